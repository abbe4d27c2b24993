"""The metrics: each declared once (:data:`DECLARED`) with its direction and who produces it, and
the exact-search retrieval metrics, defined as sentence-transformers' InformationRetrievalEvaluator
defines them (nDCG uses the graded qrels score; with 0/1 judgements the two agree exactly).

A plugin evaluator's own metrics (``success@k`` of the code evaluator, ...) are not declared here:
higher is better for them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Metric:
    name: str  #: a family with ``@k`` cut-offs ("ndcg") or one metric ("docs_per_s")
    higher_is_better: bool
    producer: str  #: who computes it
    help: str
    at_k: bool = False


RETRIEVAL_PRODUCER = "the retrieval evaluator (harness.builtin.retrieval), per test query"
HARNESS_PRODUCER = "the harness, for every baseline and candidate (harness.evaluate.evaluation)"

DECLARED: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "ndcg",
            True,
            RETRIEVAL_PRODUCER,
            "normalised discounted cumulative gain of the top k (graded)",
            True,
        ),
        Metric("recall", True, RETRIEVAL_PRODUCER, "share of the relevant documents in the top k", True),
        Metric(
            "mrr",
            True,
            RETRIEVAL_PRODUCER,
            "reciprocal rank of the first relevant document in the top k",
            True,
        ),
        Metric("map", True, RETRIEVAL_PRODUCER, "mean average precision of the top k", True),
        Metric("precision", True, RETRIEVAL_PRODUCER, "share of the top k that is relevant", True),
        Metric("accuracy", True, RETRIEVAL_PRODUCER, "1 if any relevant document is in the top k", True),
        Metric(
            "docs_per_s",
            True,
            HARNESS_PRODUCER,
            "test-corpus documents encoded per second by the evaluated variant",
        ),
        Metric("model_mb", False, HARNESS_PRODUCER, "size of the evaluated ONNX file in MiB"),
    )
}

#: the retrieval metric families (each at every ``evaluation.k_values`` cut-off)
METRICS = tuple(m.name for m in DECLARED.values() if m.at_k)
#: the metrics the harness itself measures for every baseline and candidate (speed and size)
MEASURED = tuple(m.name for m in DECLARED.values() if m.producer == HARNESS_PRODUCER)

#: the metrics reports and model cards show, each with its interval
REPORTED = ("ndcg@10", "recall@10", "mrr@10", "map@100", "recall@100")


def declared(name: str) -> Metric | None:
    """The declaration of ``name`` (``ndcg@10`` is the ``ndcg`` family's), or None for a plugin's own
    metric."""
    family, at, _ = name.partition("@")
    metric = DECLARED.get(family)
    return metric if metric is not None and metric.at_k == bool(at) else None


def higher_is_better(name: str) -> bool:
    metric = declared(name)
    return True if metric is None else metric.higher_is_better


def worst(name: str, items: Iterable[T], key: Callable[[T], float]) -> T:
    """The item with the worst value of metric ``name`` (the lowest, or the highest where lower is better)."""
    return (min if higher_is_better(name) else max)(items, key=key)


def best(name: str, items: Iterable[T], key: Callable[[T], float]) -> T:
    return (max if higher_is_better(name) else min)(items, key=key)


def reported(primary: str) -> list[str]:
    """The primary metric first, then the other reported ones."""
    return [primary] + [m for m in REPORTED if m != primary]


def metric_names(k_values: Sequence[int]) -> list[str]:
    return [f"{m}@{k}" for m in METRICS for k in sorted(set(k_values))]


def top_k(queries: np.ndarray, docs: np.ndarray, k: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` highest dot products of each query row, best first.

    Ties are broken by document order, so results are reproducible."""
    k = min(k, docs.shape[0])
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    val = np.empty((queries.shape[0], k), dtype=np.float32)
    for s in range(0, queries.shape[0], chunk):
        scores = queries[s : s + chunk] @ docs.T
        part = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < docs.shape[0]
            else np.tile(np.arange(k), (scores.shape[0], 1))
        )
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        idx[s : s + chunk] = np.take_along_axis(part, order, axis=1)
        val[s : s + chunk] = np.take_along_axis(part_scores, order, axis=1)
    return idx, val


def query_metrics(
    ranked: Sequence[str], relevant: dict[str, int], k_values: Sequence[int]
) -> dict[str, float]:
    """All metrics of one query, given its ranked document ids and ``{doc_id: grade}`` (grade > 0)."""
    out: dict[str, float] = {}
    hits = [relevant.get(d, 0) for d in ranked]
    n_rel = len(relevant)
    ideal = sorted(relevant.values(), reverse=True)
    for k in sorted(set(k_values)):
        top = hits[:k]
        found = sum(1 for h in top if h > 0)
        first = next((i for i, h in enumerate(top) if h > 0), None)
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(top) if h > 0)
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:k]))
        ap, seen = 0.0, 0
        for i, h in enumerate(top):
            if h > 0:
                seen += 1
                ap += seen / (i + 1)
        out[f"ndcg@{k}"] = dcg / idcg if idcg else 0.0
        out[f"recall@{k}"] = found / n_rel if n_rel else 0.0
        out[f"mrr@{k}"] = 1.0 / (first + 1) if first is not None else 0.0
        out[f"map@{k}"] = ap / min(k, n_rel) if n_rel else 0.0
        out[f"precision@{k}"] = found / k
        out[f"accuracy@{k}"] = 1.0 if found else 0.0
    return out


def rounded(metrics: dict[str, float], per_query: dict[str, dict[str, float]]) -> dict:
    """``{"metrics", "per_query"}`` as results.json keeps them: metrics to 6 places, per-query values to 4."""
    return {
        "metrics": {k: round(v, 6) for k, v in metrics.items()},
        "per_query": {q: {k: round(v, 4) for k, v in vals.items()} for q, vals in per_query.items()},
    }


def mean_metrics(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    if not per_query:
        return {}
    names = next(iter(per_query.values())).keys()
    return {m: float(np.mean([v[m] for v in per_query.values()])) for m in names}
