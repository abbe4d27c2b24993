"""Thresholds to verdicts: every gate kind the harness has.

Each ``[[thresholds]]`` entry becomes one gate per kind it sets. ``min``/``max`` look at the
candidate's own value; ``min_gain``, ``min_gain_ci`` and ``max_drop`` at the difference with a
reference (``against``: the untuned baseline of the same base model, or the model of the
``--compare`` run). With several seeds a threshold gates the mean or the worst seed
(``seeds``); the worst seed of a metric is the lowest for a metric where higher is better and the
highest where lower is (:func:`harness.core.metrics.worst`). The shipped export variant may
lose at most ``export.max_drop`` of the primary metric from fp32 (a ``max_drop`` gate against
``fp32``). A missing value, reference or interval fails the gate.
"""

from __future__ import annotations

import fnmatch

from harness.core.metrics import worst as worst_of
from harness.core.names import VariantName
from harness.gate.compare import comparisons
from harness.results import Gate, VariantRow
from harness.suite.schema import ThresholdTable


def gates_for(
    name: str,
    metrics: dict[str, float],
    references: dict[str, dict | None],
    comparisons: dict[str, dict],
    thresholds: list[ThresholdTable],
    worst: dict | None = None,
) -> list[Gate]:
    """The gate verdicts of candidate ``name``: ``{metric, kind, against, threshold, value, passed}``
    each, plus ``ci`` (the gain's interval) where one was computed.

    ``references``: ``{"baseline": metrics, "compare": metrics or None}``; ``comparisons``: the
    paired statistics per reference and metric (see :mod:`harness.gate.stats`). With several seeds,
    ``metrics``/``comparisons`` are the mean over seeds, and ``worst`` holds ``metrics`` and
    ``comparisons`` of the worst seed per metric (:func:`worst_seed`), for thresholds with
    ``seeds = "worst"``."""
    out: list[Gate] = []
    for t in thresholds:
        if t.candidates and not any(fnmatch.fnmatchcase(name, p) for p in t.candidates):
            continue
        on_worst = worst is not None and t.seeds == "worst"
        view_metrics, view_comps = (
            (worst["metrics"], worst["comparisons"]) if on_worst else (metrics, comparisons)
        )
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
            gate: Gate = {
                "metric": t.metric,
                "kind": kind,
                "against": t.against if relative else None,
                "threshold": threshold,
                "value": None if v is None else round(v, 6),
                "passed": passed,
            }
            if worst is not None:
                gate["seeds"] = t.seeds
            if relative and comp:
                gate["ci"] = [round(comp["ci_low"], 6), round(comp["ci_high"], 6)]
                gate["p_value"] = comp["p_value"]
            out.append(gate)
    return out


def worst_seed(
    seeds: dict, references: dict[str, dict | None], thresholds: list[ThresholdTable], seed: int
) -> dict:
    """``{metrics, comparisons}`` of the worst seed for each metric a ``seeds = "worst"`` threshold
    gates: ``seeds`` is a candidate's ``seeds`` summary (each seed's metrics and per-query values)."""
    out: dict = {"metrics": seeds["worst"], "comparisons": {}}
    for m in {t.metric for t in thresholds if t.seeds == "worst"}:
        runs = [r for r in seeds["runs"] if m in r["metrics"]]
        if not runs:
            continue
        low = worst_of(m, runs, key=lambda r: r["metrics"][m])
        for ref, stats in comparisons(low["per_query"], references, [m], seed).items():
            out["comparisons"].setdefault(ref, {}).update(stats)
    return out


def variant_drop(
    fp32: dict[str, float], variant: dict[str, float], primary: str, max_drop: float
) -> tuple[float | None, bool]:
    """A variant's drop of the primary metric from fp32, and whether it is within ``max_drop``."""
    base, value = fp32.get(primary), variant.get(primary)
    drop = None if base is None or value is None else round(base - value, 6)
    return drop, drop is not None and drop <= max_drop


def variant_gate(variants: list[VariantRow], primary: str, max_drop: float) -> Gate | None:
    """The gate of the shipped variant when it is not fp32: it may lose at most ``max_drop``."""
    shipped = next((v for v in variants if v.get("shipped")), None)
    if not shipped or shipped["variant"] == VariantName.FP32 or "drop" not in shipped:
        # fp32 itself, or a static model's one row (no fp32 to lose against)
        return None
    return {
        "metric": primary,
        "kind": "max_drop",
        "against": VariantName.FP32,
        "threshold": max_drop,
        "value": shipped.get("drop"),
        "passed": bool(shipped.get("passed")),
    }


def describe(gate: Gate) -> str:
    """One line naming the metric, the threshold, the value and the interval, for terminal and report."""
    value = "missing" if gate["value"] is None else f"{gate['value']:.4f}"
    against = f" vs {gate['against']}" if gate.get("against") else ""
    ci = (
        f" (95% CI of the gain [{gate['ci'][0]:+.4f}, {gate['ci'][1]:+.4f}], p={gate['p_value']:.4f})"
        if gate.get("ci")
        else ""
    )
    seeds = {"mean": " (mean over seeds)", "worst": " (worst seed)"}.get(gate.get("seeds"), "")
    return f"{gate['metric']} {gate['kind']} {gate['threshold']}{against}{seeds}: {value}{ci}"
