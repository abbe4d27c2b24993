"""Thresholds to verdicts: each ``[[thresholds]]`` entry becomes one gate per kind it sets."""

from __future__ import annotations

import fnmatch

from .config import ThresholdTable


def gates_for(name: str, metrics: dict[str, float], baseline: dict[str, float] | None,
              thresholds: list[ThresholdTable]) -> list[dict]:
    """The gate verdicts of candidate ``name``: ``{metric, kind, threshold, value, passed}`` each.

    For ``min_gain`` the value is the gain over the untuned baseline of the same base model."""
    out = []
    for t in thresholds:
        if t.candidates and not any(fnmatch.fnmatchcase(name, p) for p in t.candidates):
            continue
        value = metrics.get(t.metric)
        for kind in ThresholdTable.KINDS:
            threshold = getattr(t, kind)
            if threshold is None:
                continue
            v = value
            if kind == "min_gain":
                base = (baseline or {}).get(t.metric)
                v = None if value is None or base is None else value - base
            if v is None:
                passed = False
            elif kind == "max":
                passed = v <= threshold
            else:
                passed = v >= threshold
            out.append({"metric": t.metric, "kind": kind, "threshold": threshold,
                        "value": None if v is None else round(v, 6), "passed": passed})
    return out
