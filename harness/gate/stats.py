"""Paired comparisons over queries: is a candidate really better than its reference?

Both tests pair each query's value under the candidate with its value under the reference (the
untuned baseline, or the model in production with ``--compare``):

* a 95% confidence interval of the mean gain from a paired bootstrap (queries resampled with
  replacement, the same resample for both models);
* a two-sided p-value from a paired randomization test (each query's difference has its sign
  flipped at random; the p-value is the share of flips whose mean is at least as far from zero).

A candidate is "better" when the interval lies above zero and p < alpha, "worse" when it lies
below zero and p < alpha, and "not distinguishable" otherwise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

BOOTSTRAP_SAMPLES = 2000
PERMUTATIONS = 10000
ALPHA = 0.05


def paired_comparison(
    candidate: Sequence[float],
    reference: Sequence[float],
    *,
    seed: int = 0,
    samples: int = BOOTSTRAP_SAMPLES,
    permutations: int = PERMUTATIONS,
    alpha: float = ALPHA,
) -> dict:
    """Gain (candidate minus reference), its bootstrap interval, the permutation p-value, a verdict
    and how many queries got better, worse or stayed the same."""
    c, r = np.asarray(candidate, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if c.shape != r.shape or c.size == 0:
        raise ValueError(f"paired values needed, got {c.shape} and {r.shape}")
    diff = c - r
    n = diff.size
    rng = np.random.default_rng(seed)
    boot = np.empty(samples)
    for s in range(0, samples, 500):  # chunks keep memory at 500 x n
        k = min(500, samples - s)
        boot[s : s + k] = diff[rng.integers(0, n, size=(k, n))].mean(axis=1)
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    observed = abs(diff.mean())
    extreme = 0
    for s in range(0, permutations, 1000):
        k = min(1000, permutations - s)
        signs = rng.choice((-1.0, 1.0), size=(k, n))
        extreme += int((np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12).sum())
    p = (extreme + 1) / (permutations + 1)
    if low > 0 and p < alpha:
        verdict = "better"
    elif high < 0 and p < alpha:
        verdict = "worse"
    else:
        verdict = "not distinguishable"
    eps = 1e-9
    return {
        "gain": float(diff.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(p),
        "verdict": verdict,
        "queries": int(n),
        "improved": int((diff > eps).sum()),
        "worsened": int((diff < -eps).sum()),
        "unchanged": int((np.abs(diff) <= eps).sum()),
    }


def compare_runs(
    candidate: dict[str, dict[str, float]],
    reference: dict[str, dict[str, float]],
    metrics: Sequence[str],
    seed: int = 0,
) -> dict[str, dict]:
    """:func:`paired_comparison` per metric over the queries both per-query tables share."""
    queries = sorted(set(candidate) & set(reference))
    out = {}
    for m in metrics:
        pairs = [
            (candidate[q][m], reference[q][m]) for q in queries if m in candidate[q] and m in reference[q]
        ]
        if pairs:
            c, r = zip(*pairs)
            out[m] = paired_comparison(c, r, seed=seed)
    return out
