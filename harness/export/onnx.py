"""Export a sentence-transformers folder to ONNX (sentence-transformers' export, through optimum)
and check that the exported graph encodes like the torch model."""

from __future__ import annotations

import contextlib
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np

from harness.errors import CandidateError
from harness.export.pooling import add_pooling


@contextlib.contextmanager
def quiet_libraries():
    """Silence the tracer warnings and "please save the export" advice the exporters print."""
    names = ("", "sentence_transformers", "transformers", "optimum", "onnxruntime")  # "": the root logger
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def export_onnx(model_dir: Path, out_dir: Path) -> Path:
    """Write ``out_dir``: the model folder plus ``onnx/model.onnx`` (with the pooled
    ``sentence_embedding`` output, see :mod:`harness.export.variants`). Returns ``out_dir``."""
    from sentence_transformers import SentenceTransformer

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with quiet_libraries():
            model = SentenceTransformer(
                str(model_dir),
                device="cpu",
                backend="onnx",
                model_kwargs={"export": True, "provider": "CPUExecutionProvider"},
            )
            model.save_pretrained(str(tmp))
    except Exception as e:  # noqa: BLE001 - optimum raises many kinds
        shutil.rmtree(tmp, ignore_errors=True)
        raise CandidateError(f"ONNX export of {model_dir} failed: {type(e).__name__}: {e}") from None
    if not (tmp / "onnx" / "model.onnx").is_file():
        raise CandidateError(f"ONNX export of {model_dir} wrote no onnx/model.onnx")
    add_pooling(tmp / "onnx" / "model.onnx", tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def torch_embeddings(
    model_dir: Path, texts: list[str], device: str, max_seq_length: int, prompt: str = ""
) -> np.ndarray:
    """Unit-length sentence-transformers (torch) embeddings of ``texts``: the reference of every variant."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device=device)
    model.max_seq_length = max_seq_length
    ref = model.encode(
        [prompt + t for t in texts], batch_size=32, convert_to_numpy=True, normalize_embeddings=True
    )
    del model
    return ref


def check_export(
    reference: np.ndarray, encoder, texts: list[str], min_cosine: float, what: str = "the ONNX export"
) -> dict:
    """Cosine similarity between the torch ``reference`` and ``encoder``'s embeddings of ``texts``;
    below ``min_cosine`` raises :class:`CandidateError`."""
    got = encoder.encode(texts, "document")
    got = got / np.clip(np.linalg.norm(got, axis=1, keepdims=True), 1e-12, None)
    cos = (reference * got).sum(axis=1)
    result = {"samples": len(texts), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
    if cos.min() < min_cosine:
        raise CandidateError(
            f"{what} differs from the torch model: cosine {cos.min():.5f} < {min_cosine} on "
            f"{int((cos < min_cosine).sum())} of {len(texts)} texts"
        )
    return result
