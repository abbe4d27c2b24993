"""A/B tests from impression logs: per-arm click metrics, each arm against the control with the
report's statistics (:func:`harness.gate.stats.paired_comparison`: a paired bootstrap interval and a
randomization test, paired by query), and how many impressions the observed gain needs.

Per impression: ``ctr`` (1 when anything was clicked), ``mrr`` (1 / the rank of the first click, 0
without one), ``clicks@10`` (clicks in the top 10) and ``abandonment`` (1 when no click was
satisfied: with dwell times, a click of at least ``min_dwell`` seconds; without them, any click).
Lower abandonment is better; every other metric is better higher. An arm's values are averaged per
query first, and the comparison pairs each query seen in both arms.

``impressions_needed``: the impressions (both arms together) an A/B split needs to detect the
observed gain with 80% power at the 5% level, from each arm's per-impression variance (two
independent samples; pairing by query only makes the test sharper).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

from harness.data.impressions import Impression
from harness.errors import DataError

METRICS = ("ctr", "mrr", "clicks@10", "abandonment")
LOWER_IS_BETTER = {"abandonment"}
Z_ALPHA, Z_POWER = 1.959964, 0.841621  #: 5% two-sided, 80% power


def impression_metrics(imp: Impression, min_dwell: float | None = None) -> dict[str, float]:
    ranks = imp.click_ranks()
    if imp.dwell is not None and min_dwell is not None:
        satisfied = any(d >= min_dwell for d in imp.dwell)
    else:
        satisfied = bool(ranks)
    return {
        "ctr": 1.0 if ranks else 0.0,
        "mrr": 1.0 / ranks[0] if ranks else 0.0,
        "clicks@10": float(sum(1 for r in ranks if r <= 10)),
        "abandonment": 0.0 if satisfied else 1.0,
    }


def impressions_needed(gain: float, variances: Sequence[float], one_sample: bool = False) -> int | None:
    """Impressions (all arms together) for 80% power at alpha 0.05 to detect ``gain``; None when the
    gain is 0 (nothing to detect)."""
    if abs(gain) < 1e-12:
        return None
    if one_sample:  # interleaving: one sample of per-impression preferences
        return math.ceil((Z_ALPHA + Z_POWER) ** 2 * variances[0] / gain**2)
    per_arm = (Z_ALPHA + Z_POWER) ** 2 * sum(variances) / gain**2
    return 2 * math.ceil(per_arm)


def verdict_for(metric: str, comp: dict) -> str:
    """The verdict as a user reads it: for abandonment a fall is ``better``."""
    v = comp["verdict"]
    if metric in LOWER_IS_BETTER and v != "not distinguishable":
        return "worse" if v == "better" else "better"
    return v


def analyse(
    impressions: list[Impression],
    control: str | None = None,
    min_dwell: float | None = 30.0,
    seed: int = 0,
) -> dict:
    """``{control, arms, comparisons}`` of the impressions' arms (see the module's doc)."""
    import numpy as np

    from harness.gate.stats import paired_comparison

    arms: dict[str, list[Impression]] = defaultdict(list)
    for imp in impressions:
        arms[imp.arm or "-"].append(imp)
    names = list(arms)
    if len(names) < 2:
        raise DataError(
            f"{impressions[0].where.rsplit(':', 1)[0]}: only one arm ({names[0]!r}): an A/B test needs "
            "two (an 'arm' column, or one log file per arm)"
        )
    if control is None:
        control = "control" if "control" in arms else names[0]
    elif control not in arms:
        raise DataError(f"--control {control!r}: not an arm of the logs; the arms are {names}")
    values = {a: [impression_metrics(i, min_dwell) for i in imps] for a, imps in arms.items()}
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    for a, imps in arms.items():
        sums: dict[str, list] = defaultdict(list)
        for imp, v in zip(imps, values[a]):
            sums[imp.query].append(v)
        per_query[a] = {q: {m: float(np.mean([v[m] for v in vs])) for m in METRICS} for q, vs in sums.items()}
    out_arms = {}
    for a in names:
        vals = values[a]
        out_arms[a] = {
            "impressions": len(vals),
            "queries": len(per_query[a]),
            **{m: round(float(np.mean([v[m] for v in vals])), 6) for m in METRICS},
        }
    comparisons = []
    for a in names:
        if a == control:
            continue
        shared = sorted(set(per_query[a]) & set(per_query[control]))
        if not shared:
            raise DataError(f"arms {a!r} and {control!r} share no query: they cannot be compared by query")
        for m in METRICS:
            comp = paired_comparison(
                [per_query[a][q][m] for q in shared], [per_query[control][q][m] for q in shared], seed=seed
            )
            var = [float(np.var([v[m] for v in values[x]], ddof=1)) for x in (a, control)]
            comparisons.append(
                {
                    "arm": a,
                    "against": control,
                    "metric": m,
                    "gain": round(comp["gain"], 6),
                    "ci_low": round(comp["ci_low"], 6),
                    "ci_high": round(comp["ci_high"], 6),
                    "p_value": round(comp["p_value"], 6),
                    "verdict": verdict_for(m, comp),
                    "queries": len(shared),
                    "impressions": len(values[a]) + len(values[control]),
                    "impressions_needed": impressions_needed(comp["gain"], var),
                }
            )
    return {
        "kind": "ab",
        "control": control,
        "min_dwell": min_dwell,
        "arms": out_arms,
        "comparisons": comparisons,
    }


def decision(doc: dict, metric: str, min_gain: float) -> tuple[bool, str]:
    """(some arm is better than the control on ``metric`` by at least ``min_gain``, the line saying so)."""
    rows = [c for c in doc["comparisons"] if c["metric"] == metric]
    if not rows:
        known = sorted({c["metric"] for c in doc["comparisons"]})
        raise DataError(f"--metric {metric!r}: not a metric of this test; expected one of {known}")
    sign = -1 if metric in LOWER_IS_BETTER else 1
    won = [c for c in rows if c["verdict"] == "better" and sign * c["gain"] >= min_gain]
    if won:
        best = max(won, key=lambda c: sign * c["gain"])
        return True, f"{best['arm']} is better than {best['against']} on {metric} by {best['gain']:+.4f}"
    return False, (
        f"no arm is better than {rows[0]['against']} on {metric}"
        + (f" by at least {min_gain}" if min_gain else "")
    )
