"""Judging one candidate: paired statistics against each reference, the gates, the guards and the
per-query view; the candidate's :class:`harness.results.Judgement`."""

from __future__ import annotations

from harness.core.metrics import REPORTED
from harness.core.names import Status
from harness.gate.compare import comparisons, per_query_view
from harness.gate.gates import gates_for, variant_gate, worst_seed
from harness.gate.guards import guards
from harness.results import CandidateResult, Judgement
from harness.suite.schema import Suite


def judge(
    result: CandidateResult,
    baseline: CandidateResult | None,
    compare: dict | None,
    suite: Suite,
    data,
    others: dict[str, dict] | None = None,
) -> Judgement:
    """Compare a trained and evaluated ``result`` with its untuned ``baseline`` (None when that one
    did not pass), the ``--compare`` model (None without it) and ``others`` (the suite's references
    by name, each with ``metrics`` and ``per_query``), gate it on the suite's thresholds and say what
    to look at. ``data``: the prepared data (texts for the per-query view)."""
    primary = suite.evaluation.primary_metric
    references = {"baseline": baseline, "compare": compare, **(others or {})}
    metrics = sorted({primary, *REPORTED, *(t.metric for t in suite.thresholds)})
    out: Judgement = {"comparison": comparisons(result["per_query"], references, metrics, suite.data.seed)}
    if compare:
        out["compared_with"] = {k: compare[k] for k in ("file", "run_id", "name")}
    worst = (
        worst_seed(result["seeds"], references, suite.thresholds, suite.data.seed)
        if result.get("seeds")
        else None
    )
    gates = gates_for(
        result["name"],
        result["metrics"],
        {k: v["metrics"] if v else None for k, v in references.items()},
        out["comparison"],
        suite.thresholds,
        worst,
    )
    drop = variant_gate(result.get("variants", []), primary, suite.export.max_drop)
    out["gates"] = gates + ([drop] if drop else [])
    out["status"] = Status.PASSED if all(g["passed"] for g in out["gates"]) else Status.FAILED
    out["guards"] = guards(result, baseline, primary) + (result.get("mining") or {}).get("warnings", [])
    if baseline:
        out["per_query_view"] = per_query_view(result, baseline, primary, data)
    return out
