"""The paired bootstrap and randomization test behave as the statistics say they should."""

from __future__ import annotations

import numpy as np
import pytest

from harness.gate.stats import compare_runs, paired_comparison


def test_clear_improvement_is_significant():
    rng = np.random.default_rng(1)
    ref = rng.uniform(0, 1, 300)
    cand = np.clip(ref + 0.1 + rng.normal(0, 0.05, 300), 0, None)
    r = paired_comparison(cand, ref)
    assert r["verdict"] == "better" and r["p_value"] < 0.001
    assert r["ci_low"] < r["gain"] < r["ci_high"] and r["ci_low"] > 0.05
    assert r["improved"] > 250


def test_noise_is_not_distinguishable():
    rng = np.random.default_rng(2)
    ref = rng.uniform(0, 1, 200)
    cand = ref + rng.normal(0, 0.2, 200) * rng.choice([0, 1], 200)
    r = paired_comparison(cand, ref)
    assert r["verdict"] == "not distinguishable"
    assert r["ci_low"] < 0 < r["ci_high"] and r["p_value"] > 0.05


def test_worse_and_identical():
    ref = np.linspace(0.2, 1, 100)
    assert paired_comparison(ref - 0.1, ref)["verdict"] == "worse"
    same = paired_comparison(ref, ref)
    assert same["gain"] == 0 and same["unchanged"] == 100 and same["p_value"] == 1.0
    assert same["verdict"] == "not distinguishable"


def test_p_value_matches_an_exact_sign_flip_enumeration():
    """With 10 queries all 1024 sign patterns can be enumerated; the sampled p-value must agree."""
    import itertools

    diff = np.array([0.3, 0.1, -0.05, 0.2, 0.0, 0.15, -0.1, 0.25, 0.05, 0.1])
    obs = abs(diff.mean())
    exact = np.mean(
        [abs((np.array(s) * diff).mean()) >= obs - 1e-12 for s in itertools.product([-1, 1], repeat=10)]
    )
    r = paired_comparison(diff, np.zeros(10), permutations=20000)
    assert r["p_value"] == pytest.approx(exact, abs=0.01)


def test_compare_runs_pairs_by_query_id():
    cand = {"a": {"m": 1.0}, "b": {"m": 1.0}, "c": {"m": 0.0}, "z": {"m": 1.0}}
    ref = {"a": {"m": 0.0}, "b": {"m": 1.0}, "c": {"m": 0.0}}
    r = compare_runs(cand, ref, ["m", "missing"])
    assert set(r) == {"m"} and r["m"]["queries"] == 3 and r["m"]["gain"] == pytest.approx(1 / 3)
