"""Rankings to metrics: the one way every dense model, BM25 and hybrid ranking of a test split is
scored (the ``retrieval`` evaluator, :mod:`harness.evaluate.references`)."""

from __future__ import annotations

from harness.api import EvalResult
from harness.core.metrics import mean_metrics, query_metrics


def rank_metrics(idx, doc_ids: list[str], split, k_values) -> EvalResult:
    """The metrics of rankings ``idx`` (per query of ``split``, corpus positions best first): for a
    dense model, and for BM25 and hybrid search alike (:mod:`harness.evaluate.lexical`)."""
    relevant = split.relevant()
    per_query, rankings = {}, {}
    for qid, row in zip(split.queries["id"].to_list(), idx):
        ranked = [doc_ids[i] for i in row]
        per_query[qid] = query_metrics(ranked, relevant.get(qid, {}), k_values)
        rankings[qid] = ranked[:10]
    return EvalResult(mean_metrics(per_query), per_query, rankings)


def rank_scores(scores, doc_ids: list[str], split, k_values) -> EvalResult:
    """:func:`rank_metrics` of a queries x documents score matrix (higher is better; ties keep corpus
    order)."""
    import numpy as np

    idx = np.argsort(-scores, axis=1, kind="stable")[:, : max(k_values)]
    return rank_metrics(idx, doc_ids, split, k_values)
