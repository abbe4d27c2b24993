"""The ``retrieval`` evaluator: exact search over the whole corpus of the split, nDCG/Recall/MRR/MAP@k."""

from __future__ import annotations

from harness import hookimpl
from harness.api import EvalResult, Evaluator
from harness.evaluate.metrics import mean_metrics, metric_names, query_metrics, top_k


class RetrievalEvaluator(Evaluator):
    name = "retrieval"
    description = "exact search over the whole corpus: ndcg, recall, mrr, map, precision, accuracy @k"

    def metric_names(self, k_values):
        return metric_names(k_values)

    def evaluate(self, encoder, corpus, split, k_values):
        d = encoder.encode_documents(corpus["text"].to_list())
        q = encoder.encode_queries(split.queries["text"].to_list())
        idx, _ = top_k(q, d, max(k_values))
        return rank_metrics(idx, corpus["id"].to_list(), split, k_values)


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
    """:func:`rank_metrics` of a queries x documents score matrix (higher is better; ties keep corpus order)."""
    import numpy as np

    idx = np.argsort(-scores, axis=1, kind="stable")[:, :max(k_values)]
    return rank_metrics(idx, doc_ids, split, k_values)


@hookimpl
def harness_register_evaluators(register):
    register(RetrievalEvaluator())
