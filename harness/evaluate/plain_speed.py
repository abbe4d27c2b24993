"""The speed every docs/s figure is compared with: plain sentence-transformers (fp32 torch, its own
``encode``) on a seeded sample of the test corpus, measured once per base model in each run beside
the harness's encoders, on the same machine. A baseline carries it (``plain_st``); each candidate
gets its docs/s as a multiple of its base model's (``speed.x_plain_st``,
:func:`harness.gate.verdict.speed`)."""

from __future__ import annotations

import random
import time
from pathlib import Path

SAMPLE = 512  #: documents of the test corpus it encodes (seeded; representative lengths)
_MEASURED: dict[tuple, dict] = {}  #: one measurement per model and setting in a process


def plain_speed(
    model_dir: Path, texts: list[str], device: str, max_seq_length, batch_size: int, seed: int
) -> dict:
    """Documents per second of ``SentenceTransformer(model_dir).encode`` on ``SAMPLE`` of ``texts``."""
    from importlib.metadata import version

    sample = random.Random(seed).sample(texts, min(SAMPLE, len(texts)))
    key = (str(model_dir), device, max_seq_length, batch_size, len(sample), seed)
    if key in _MEASURED:
        return _MEASURED[key]
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device=device)
    if isinstance(max_seq_length, int):
        model.max_seq_length = max_seq_length
    model.encode(sample[:batch_size], batch_size=batch_size, show_progress_bar=False)  # warm-up
    t0 = time.perf_counter()
    model.encode(sample, batch_size=batch_size, show_progress_bar=False)
    seconds = time.perf_counter() - t0
    del model
    _MEASURED[key] = {
        "docs_per_s": round(len(sample) / seconds, 1),
        "texts": len(sample),
        "batch_size": batch_size,
        "max_seq_length": max_seq_length if isinstance(max_seq_length, int) else None,
        "by": f"sentence-transformers {version('sentence-transformers')} encode, fp32 torch on {device}",
    }
    return _MEASURED[key]


def run_plain_speed(run, model_dir: Path, device: str) -> dict:
    """:func:`plain_speed` of ``model_dir`` on ``run``'s test corpus at its suite's evaluation settings."""
    ev = run.suite.evaluation
    texts = run.data.corpus["text"].to_list()
    return plain_speed(model_dir, texts, device, ev.max_seq_length, ev.batch_size, run.suite.data.seed)
