"""Keyword search and hybrid search, the references a tuned model is held against.

* :class:`Bm25`: BM25 with ``bm25s`` (its Lucene variant; stemming and stop words as the suite
  says), scoring every document for every query.
* :func:`fuse`: a dense ranking fused with BM25's, by reciprocal rank fusion (each document scores
  ``sum 1 / (k + rank)`` over the two rankings' top ``depth``) or by a weighted sum of the two
  scores, each min-max normalised per query.

Both give a queries x documents score matrix; the retrieval evaluator ranks it and computes the
metrics with the same code as for a dense model (:func:`harness.evaluate.ranking.rank_metrics`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class Bm25:
    """A BM25 index of ``texts`` (``k1``, ``b``; ``stemmer``: a PyStemmer language or "" for none;
    ``stopwords``: a bm25s stop-word list name such as "en", or "" for none)."""

    def __init__(
        self,
        texts: Sequence[str],
        k1: float = 1.5,
        b: float = 0.75,
        stemmer: str = "english",
        stopwords: str = "en",
    ):
        import bm25s

        self._analyser(stemmer, stopwords)
        self.retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        self.retriever.index(self._tokens(texts, ids=True), show_progress=False)
        self.size = len(texts)

    def _analyser(self, stemmer: str, stopwords: str) -> None:
        self.stemmer = None
        if stemmer:
            import Stemmer

            self.stemmer = Stemmer.Stemmer(stemmer)
        self.stopwords = stopwords or None

    def save(self, folder) -> None:
        """bm25s's own files of the index (its scores and vocabulary) in ``folder``."""
        self.retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder, size: int, stemmer: str = "english", stopwords: str = "en") -> Bm25:
        """The index :meth:`save` wrote, of ``size`` documents, with the analyser it was built with."""
        import bm25s

        self = cls.__new__(cls)
        self._analyser(stemmer, stopwords)
        self.retriever = bm25s.BM25.load(str(folder), show_progress=False)
        self.size = size
        return self

    def _tokens(self, texts: Sequence[str], ids: bool):
        import bm25s

        return bm25s.tokenize(
            list(texts), stopwords=self.stopwords, stemmer=self.stemmer, show_progress=False, return_ids=ids
        )

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """The BM25 score of every document for every query (queries x documents, float32)."""
        out = np.zeros((len(queries), self.size), dtype=np.float32)
        for i, tokens in enumerate(self._tokens(queries, ids=False)):
            if tokens:
                out[i] = self.retriever.get_scores(tokens)
        return out


def fuse(
    dense: np.ndarray,
    lexical: np.ndarray,
    method: str = "rrf",
    k: int = 60,
    depth: int = 100,
    weight: float = 0.5,
) -> np.ndarray:
    """The fused scores of two queries x documents score matrices (higher is better).

    ``rrf``: a document's score is the sum of ``1 / (k + rank)`` over the rankings it is in the top
    ``depth`` of (rank 1 is the best); ``weighted``: ``weight`` times the dense score plus
    ``1 - weight`` times the lexical one, each min-max normalised per query. Ties keep corpus order."""
    if method == "rrf":
        out = np.zeros_like(dense, dtype=np.float64)
        for scores in (dense, lexical):
            depth_ = min(depth, scores.shape[1])
            top = np.argsort(-scores, axis=1, kind="stable")[:, :depth_]
            rows = np.arange(scores.shape[0])[:, None]
            out[rows, top] += 1.0 / (k + np.arange(1, depth_ + 1))[None, :]
        return out

    def normalised(s: np.ndarray) -> np.ndarray:
        lo, hi = s.min(axis=1, keepdims=True), s.max(axis=1, keepdims=True)
        return (s - lo) / np.where(hi > lo, hi - lo, 1.0)

    return weight * normalised(dense.astype(np.float64)) + (1 - weight) * normalised(
        lexical.astype(np.float64)
    )
