"""The in-batch losses of sentence-transformers and their cached (mini-batched) forms: what the memory
plan swaps (:mod:`harness.train.memory`) and what a diagnosis compares with ln(the batch)
(:mod:`harness.gate.diagnosis`)."""

from __future__ import annotations

#: an uncached in-batch loss -> its cached form (the same loss values, mini-batched)
CACHED = {
    "MultipleNegativesRankingLoss": "CachedMultipleNegativesRankingLoss",
    "GISTEmbedLoss": "CachedGISTEmbedLoss",
    "MultipleNegativesSymmetricRankingLoss": "CachedMultipleNegativesSymmetricRankingLoss",
}
UNCACHED = {v: k for k, v in CACHED.items()}
#: losses whose candidates for a query are the batch's documents: guessing scores ln(their number)
IN_BATCH = frozenset(CACHED) | frozenset(UNCACHED)
