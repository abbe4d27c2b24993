"""Evaluation of a static embedding model (``type = "static"``): no ONNX export and no variants; its
token table is copied into ``export/static/`` (what ``harness release`` ships), checked against the
sentence-transformers (torch) model and evaluated on the test split through the numpy encoder."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from harness.core.names import Stage
from harness.core.suiterun import SuiteRun
from harness.results import Evaluated
from harness.suite.collect import Item

VARIANT = "static"  #: its one row in the report's variants table
FOLDER = "static"  #: its folder in export/ (and in a release)


def evaluate_static(
    evaluation, run: SuiteRun, item: Item, model_dir: Path, work: Path, progress, keys: dict, dims=()
) -> Evaluated:
    """The static model in ``model_dir`` evaluated like a shipped variant (re-used with ``--resume``)."""
    from harness.core import records
    from harness.encode.static import StaticEncoder
    from harness.evaluate.rows import evaluate_encoder, model_mb, shipped_result
    from harness.export.onnx import check_export, torch_embeddings

    t0 = time.perf_counter()
    export_dir = work / "export" / FOLDER
    if not records.is_done(export_dir, keys["export"]):
        shutil.rmtree(export_dir, ignore_errors=True)
        shutil.copytree(model_dir, export_dir, ignore=shutil.ignore_patterns("*.json.done", "checkpoint*"))
        records.mark_done(export_dir, keys["export"])
    export_s = time.perf_counter() - t0
    row_file, row_key = work / "variants" / f"{VARIANT}.json", records.digest([keys["result"], VARIANT])
    row = records.load(row_file, row_key)
    if row is not None:
        progress(
            Stage.EVALUATED,
            {"variant": VARIANT, "seconds": 0, "docs_per_s": row["metrics"]["docs_per_s"], "resumed": True},
        )
    else:
        ex = run.suite.export
        encoder = StaticEncoder(
            export_dir, query_prompt=item.model.query_prompt, document_prompt=item.model.document_prompt
        )
        sample = run.data.corpus["text"].head(ex.check_samples).to_list()
        t1 = time.perf_counter()
        reference = torch_embeddings(model_dir, sample, evaluation.device, None, encoder.prompts["document"])
        check = check_export(reference, encoder, sample, ex.min_cosine, "the static model in numpy")
        t2 = time.perf_counter()
        progress(
            Stage.EXPORTED,
            {
                "variant": VARIANT,
                "seconds": round(t1 - t0, 1),
                "min_cosine": check["min_cosine"],
                "provider": encoder.provider,
            },
        )
        info = encoder.describe()
        shipped = item.reference is None
        evaluated, cached, _ = evaluate_encoder(
            evaluation, run, item, encoder, VARIANT, dims, shipped, progress
        )
        t3 = time.perf_counter()
        info["file"] = str(Path(info["file"]).relative_to(run.run_dir))
        row = {
            "variant": VARIANT,
            "file": info["file"],
            "provider": encoder.provider,
            "metrics": {
                **evaluated["metrics"],
                "docs_per_s": evaluated["docs_per_s"],
                "model_mb": model_mb(encoder.path),
            },
            "encoder": info,
            "export_check": check,
            "made_by": made_by(item.model.pca_dims),
            "cached_from": cached["run"] if cached else None,
            "evaluated": evaluated,
            "timings": {
                "build_s": round(t1 - t0, 1),
                "check_s": round(t2 - t1, 1),
                "evaluate_s": round(t3 - t2, 1),
            },
        }
        records.store(row_file, row_key, row)
    evaluated = row.pop("evaluated")
    row["shipped"] = not item.untuned
    return shipped_result(row, evaluated, [row], export_s, None)


def made_by(pca_dims: int) -> dict:
    """How a static model is made and served, and the versions of the libraries (``made_by``)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for dist in ("model2vec", "sentence-transformers", "numpy", "tokenizers"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    steps = [
        f"model2vec.distill (every vocabulary token through the model, PCA to {pca_dims}, Zipf weights)",
        "sentence-transformers StaticEmbedding (fine-tuned on the pairs, for a candidate)",
        "served by harness.encode.static: mean of token rows in numpy, no ONNX",
    ]
    return {"steps": steps, "versions": versions}
