"""What an evaluated model's result is made of, shared by the ONNX variants
(:mod:`harness.evaluate.evaluation`) and static models (:mod:`harness.evaluate.static`): the
untuned-baseline cache key, a graph's size, and the result of the shipped variant with every row."""

from __future__ import annotations

import time
from pathlib import Path

from harness.core.names import Stage
from harness.core.suiterun import SuiteRun
from harness.evaluate.references import settings_key
from harness.results import Evaluated


def baseline_cache_key(run: SuiteRun, encoder, info: dict, dims, shipped: bool) -> str:
    """The key of an untuned model's test-split evaluation in the cache: the graph, the data, the
    evaluation settings and everything else its numbers depend on."""
    from harness.evaluate import cache

    settings = {
        **info,
        "dims": list(dims),
        "shipped": shipped,
        "references": settings_key(run.suite),
        "out_of_domain": {n: (d.fingerprint, len(d.test)) for n, d in run.out_of_domain.items()},
    }
    return cache.evaluation_key(encoder.path, run.data, run.suite.evaluation, settings, encoder.prompts)


def shipped_result(
    shipped: dict, evaluated: dict, rows: list, export_s: float, choice: str | None
) -> Evaluated:
    """A model's result: its shipped variant's numbers (out-of-domain ones as ``<name>/<metric>``, paired
    per query like the rest) and every variant's row."""
    ood = evaluated.get("out_of_domain") or {}
    metrics = {
        **shipped["metrics"],
        **{f"{n}/{m}": v for n, o in ood.items() for m, v in o["metrics"].items()},
    }
    per_query = {
        **evaluated["per_query"],
        **{
            f"{n}/{q}": {f"{n}/{m}": v for m, v in vals.items()}
            for n, o in ood.items()
            for q, vals in o["per_query"].items()
        },
    }
    return {
        "metrics": metrics,
        "encoder": shipped["encoder"],
        "export_check": shipped["export_check"],
        "variant": shipped["variant"],
        "variants": rows,
        "out_of_domain": {n: {k: v for k, v in o.items() if k != "per_query"} for n, o in ood.items()},
        "per_query": per_query,
        "rankings": evaluated["rankings"],
        "dims": evaluated.get("dims"),
        "hybrid": evaluated.get("hybrid") or {},
        "evaluation_cached_from": shipped["cached_from"],
        "timings": {
            "export_s": round(export_s, 1),
            **shipped["timings"],
            "docs_per_s": shipped["metrics"]["docs_per_s"],
        },
        **({"variant_choice": choice} if choice else {}),
    }


def model_mb(file: Path) -> float:
    """The size of a variant's graph in MB (an OpenVINO graph's weights are in the .bin beside it)."""
    size = file.stat().st_size + (file.with_suffix(".bin").stat().st_size if file.suffix == ".xml" else 0)
    return round(size / 2**20, 1)


def evaluate_encoder(evaluation, run: SuiteRun, item, encoder, variant: str, dims, shipped: bool, progress):
    """``encoder`` (a variant's, or a static model's) on the test split by ``evaluation``'s evaluators,
    an untuned model's numbers taken from the cache where an identical evaluation is there; reported
    as ``variant``. Returns the evaluation, the cache entry it came from (or None) and the seconds."""
    from harness.evaluate import cache

    t0 = time.perf_counter()
    key = cached = None
    if item.untuned and not evaluation.no_cache:  # an untuned model's numbers do not change between runs
        key = baseline_cache_key(run, encoder, encoder.describe(), dims, shipped)
        cached = cache.load(key)
    evaluated = cached or evaluation.test_split.evaluate(run, encoder, dims, shipped)
    seconds = time.perf_counter() - t0
    if key and not cached:
        cache.store(key, {**evaluated, "run": str(run.run_dir)})
    progress(
        Stage.EVALUATED,
        {
            "variant": variant,
            "seconds": round(seconds, 1),
            "docs_per_s": evaluated["docs_per_s"],
            "cached_from": cached["run"] if cached else None,
        },
    )
    return evaluated, cached, seconds
