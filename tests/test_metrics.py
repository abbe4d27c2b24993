"""The retrieval metrics agree with sentence-transformers' InformationRetrievalEvaluator."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from harness.api import Encoder, Split
from harness.builtin.retrieval import RetrievalEvaluator
from harness.core.metrics import query_metrics, top_k

from .conftest import synthetic_pairs


def test_hand_computed_example():
    m = query_metrics(["a", "x", "b", "y"], {"a": 1, "b": 1, "c": 1}, [1, 3])
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["mrr@3"] == 1.0
    assert m["precision@1"] == 1.0
    assert m["ndcg@3"] == pytest.approx((1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3) + 1 / np.log2(4)))
    assert m["map@3"] == pytest.approx((1 + 2 / 3) / 3)
    none = query_metrics(["x", "y"], {"a": 1}, [1])
    assert none["ndcg@1"] == none["mrr@1"] == none["accuracy@1"] == 0.0


def test_top_k_is_exact_and_breaks_ties_by_document_order():
    rng = np.random.default_rng(0)
    q, d = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(50, 5)).astype(np.float32)
    idx, val = top_k(q, d, 10, chunk=3)
    full = np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :10]
    assert (idx == full).all()
    ties, _ = top_k(np.ones((1, 2), np.float32), np.ones((6, 2), np.float32), 4)
    assert ties.tolist() == [[0, 1, 2, 3]]


class TorchEncoder(Encoder):
    def __init__(self, model):
        self.model = model

    def encode_queries(self, texts):
        return self.model.encode(list(texts), normalize_embeddings=True)

    encode_documents = encode_queries


def test_same_numbers_as_sentence_transformers_evaluator(tiny_model):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    pairs = synthetic_pairs(60, 3)
    corpus = pl.DataFrame({"id": [f"d{i}" for i in range(60)], "text": [p["document"] for p in pairs]})
    queries = pl.DataFrame({"id": [f"q{i}" for i in range(60)], "text": [p["query"] for p in pairs]})
    # each query: its own document, and for every third query a second relevant one
    rows = [(f"q{i}", f"d{i}", 1) for i in range(60)] + [
        (f"q{i}", f"d{(i + 7) % 60}", 1) for i in range(0, 60, 3)
    ]
    qrels = pl.DataFrame(
        rows, schema={"query_id": pl.Utf8, "doc_id": pl.Utf8, "score": pl.Int64}, orient="row"
    )
    model = SentenceTransformer(str(tiny_model), device="cpu")
    ks = [1, 3, 5, 10]
    ours = (
        RetrievalEvaluator().evaluate(TorchEncoder(model), corpus, Split("test", queries, qrels), ks).metrics
    )
    st = InformationRetrievalEvaluator(
        queries=dict(queries.iter_rows()),
        corpus=dict(corpus.iter_rows()),
        relevant_docs={q: {d for qq, d, _ in rows if qq == q} for q, *_ in rows},
        mrr_at_k=ks,
        ndcg_at_k=ks,
        accuracy_at_k=ks,
        precision_recall_at_k=ks,
        map_at_k=ks,
        name="t",
    )(model)
    compared = 0
    for key, value in st.items():
        metric = key.removeprefix("t_cosine_")
        if metric in ours:
            assert ours[metric] == pytest.approx(value, abs=1e-6), metric
            compared += 1
    assert compared >= 20
