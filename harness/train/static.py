"""Static embedding models: a ``[[models]]`` entry with ``type = "static"``. Model2Vec distils a
token-embedding table from a sentence-transformer in seconds (every vocabulary token through the
model once, PCA to ``pca_dims``, Zipf weighting); the table becomes a sentence-transformers
``StaticEmbedding`` model, which is the entry's untuned baseline (distilled from the untuned base)
and the starting point of its candidates (distilled from ``distill_from`` where named, then
fine-tuned on the pairs like any candidate). Serving needs only numpy (:mod:`harness.encode.static`).

Model2Vec is installed without its ``distill`` extra, which pins transformers below 5.4: the
distillation itself runs on the transformers the harness uses (tests/test_static.py checks it)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from harness.core.names import Stage
from harness.errors import CandidateError

RECORD = "static.json"


def distil(source: Path, out: Path, pca_dims: int) -> dict:
    """Write the StaticEmbedding model Model2Vec distils from the sentence-transformers folder
    ``source`` to ``out`` (re-used when it is there from the same source and size)."""
    record = out / RECORD
    if record.is_file():
        info = json.loads(record.read_text())
        if info.get("source") == str(source) and info.get("pca_dims") == pca_dims:
            return info
    import numpy as np

    from harness.export.onnx import quiet_libraries

    t0 = time.perf_counter()
    try:
        from model2vec.distill import distill
    except ImportError as e:  # pragma: no cover - a dependency of the harness
        raise CandidateError(f"type = 'static' needs model2vec and skeletoken ({e})") from None
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    with quiet_libraries():
        m2v = distill(str(source), pca_dims=pca_dims, device="cpu", quantize_to="float32")
    table = np.asarray(m2v.embedding, dtype=np.float32)
    model = SentenceTransformer(
        modules=[StaticEmbedding(m2v.tokenizer, embedding_weights=table)], device="cpu"
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    info = {
        "source": str(source),
        "pca_dims": pca_dims,
        "vocabulary": int(table.shape[0]),
        "dimensions": int(table.shape[1]),
        "by": "model2vec.distill",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    record.write_text(json.dumps(info))
    return info


def static_model(run, item, resolved, progress):
    """The static model ``item`` starts from (made once per run in ``static/``): distilled from the
    untuned base for the baseline, from ``distill_from`` (a candidate trained earlier) for a candidate
    that names one; and what was distilled."""
    source, name = resolved.path, "base"
    if not item.untuned and item.model.distill_from is not None:
        name = item.model.distill_from
        source = run.trained_model(name, "distill_from", "it must be selected too, and run before this one")
    folder = (
        run.run_dir / "static" / (item.model.name if name == "base" else f"{item.model.name}-from-{name}")
    )
    info = {**distil(Path(source), folder, item.model.pca_dims), "from": name}
    progress(Stage.DISTILLED, info)
    return replace(resolved, path=folder), info
