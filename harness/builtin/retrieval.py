"""The ``retrieval`` evaluator: exact search over the whole corpus of the split, nDCG/Recall/MRR/MAP@k."""

from __future__ import annotations

from harness import hookimpl
from harness.api import Evaluator
from harness.core.metrics import metric_names, top_k
from harness.evaluate.ranking import rank_metrics


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


@hookimpl
def harness_register_evaluators(register):
    register(RetrievalEvaluator())
