"""Thresholds to verdicts: each ``[[thresholds]]`` entry becomes one gate per kind it sets.

``min``/``max`` look at the candidate's own value; ``min_gain``, ``min_gain_ci`` and ``max_drop``
at the difference with a reference (``against``: the untuned baseline of the same base model, or
the model of the ``--compare`` run). A missing value, reference or interval fails the gate.
"""

from __future__ import annotations

import fnmatch

from harness.suite.config import ThresholdTable


def gates_for(name: str, metrics: dict[str, float], references: dict[str, dict | None],
              comparisons: dict[str, dict], thresholds: list[ThresholdTable], worst: dict | None = None) -> list[dict]:
    """The gate verdicts of candidate ``name``: ``{metric, kind, against, threshold, value, passed}``
    each, plus ``ci`` (the gain's interval) where one was computed.

    ``references``: ``{"baseline": metrics, "compare": metrics or None}``; ``comparisons``: the
    paired statistics per reference and metric (see :mod:`harness.gate.stats`). With several seeds,
    ``metrics``/``comparisons`` are the mean over seeds, and ``worst`` holds ``metrics`` and
    ``comparisons`` of the worst seed per metric, for thresholds with ``seeds = "worst"``."""
    out = []
    for t in thresholds:
        if t.candidates and not any(fnmatch.fnmatchcase(name, p) for p in t.candidates):
            continue
        on_worst = worst is not None and t.seeds == "worst"
        view_metrics, view_comps = (worst["metrics"], worst["comparisons"]) if on_worst else (metrics, comparisons)
        value = view_metrics.get(t.metric)
        ref = (references.get(t.against) or {}).get(t.metric)
        comp = (view_comps.get(t.against) or {}).get(t.metric)
        for kind in ThresholdTable.KINDS:
            threshold = getattr(t, kind)
            if threshold is None:
                continue
            relative = kind in ThresholdTable.RELATIVE
            if kind == "min_gain_ci":
                v = comp["ci_low"] if comp else None
            elif kind == "min_gain":
                v = None if value is None or ref is None else value - ref
            elif kind == "max_drop":
                v = None if value is None or ref is None else ref - value
            else:
                v = value
            passed = v is not None and (v <= threshold if kind in ("max", "max_drop") else v >= threshold)
            gate = {"metric": t.metric, "kind": kind, "against": t.against if relative else None,
                    "threshold": threshold, "value": None if v is None else round(v, 6), "passed": passed}
            if worst is not None:
                gate["seeds"] = t.seeds
            if relative and comp:
                gate["ci"] = [round(comp["ci_low"], 6), round(comp["ci_high"], 6)]
                gate["p_value"] = comp["p_value"]
            out.append(gate)
    return out


def describe(gate: dict) -> str:
    """One line naming the metric, the threshold, the value and the interval, for terminal and report."""
    value = "missing" if gate["value"] is None else f"{gate['value']:.4f}"
    against = f" vs {gate['against']}" if gate.get("against") else ""
    ci = f" (95% CI of the gain [{gate['ci'][0]:+.4f}, {gate['ci'][1]:+.4f}], p={gate['p_value']:.4f})" if gate.get("ci") else ""
    seeds = {"mean": " (mean over seeds)", "worst": " (worst seed)"}.get(gate.get("seeds"), "")
    return f"{gate['metric']} {gate['kind']} {gate['threshold']}{against}{seeds}: {value}{ci}"
