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
        doc_ids = corpus["id"].to_list()
        d = encoder.encode_documents(corpus["text"].to_list())
        q = encoder.encode_queries(split.queries["text"].to_list())
        idx, _ = top_k(q, d, max(k_values))
        relevant = split.relevant()
        per_query, rankings = {}, {}
        for qid, row in zip(split.queries["id"].to_list(), idx):
            ranked = [doc_ids[i] for i in row]
            per_query[qid] = query_metrics(ranked, relevant.get(qid, {}), k_values)
            rankings[qid] = ranked[:10]
        return EvalResult(mean_metrics(per_query), per_query, rankings)


@hookimpl
def harness_register_evaluators(register):
    register(RetrievalEvaluator())
