"""Judging one candidate: paired statistics against each reference, the gates, the guards and the
per-query view; the candidate's :class:`harness.results.Judgement`."""

from __future__ import annotations

from harness.core.metrics import REPORTED
from harness.core.names import Status
from harness.gate.compare import comparisons, per_query_view
from harness.gate.diagnosis import diagnose
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
    item=None,
) -> Judgement:
    """Compare a trained and evaluated ``result`` with its untuned ``baseline`` (None when that one
    did not pass), the ``--compare`` model (None without it) and ``others`` (the suite's references
    by name, each with ``metrics`` and ``per_query``), gate it on the suite's thresholds and say what
    to look at, and (not better than its baseline or the best reference) why, with what to try next.
    ``data``: the prepared data (texts for the per-query view); ``item``: the candidate's
    :class:`harness.suite.collect.Item` (what its diagnosis reads of the suite)."""
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
    if (fast := speed(result, baseline)) is not None:
        out["speed"] = fast
    out["status"] = Status.PASSED if all(g["passed"] for g in out["gates"]) else Status.FAILED
    out["guards"] = guards(result, baseline, primary) + (result.get("mining") or {}).get("warnings", [])
    if baseline:
        out["per_query_view"] = per_query_view(result, baseline, primary, data)
    if item is not None:
        metrics = {k: v["metrics"] for k, v in (others or {}).items() if v and v.get("metrics")}
        out["diagnosis"] = diagnose(
            result, baseline, out["comparison"], metrics, primary, facts(item, result, suite, data)
        )
    return out


def facts(item, result: CandidateResult, suite: Suite, data) -> dict:
    """What a diagnosis reads beside the candidate's records: the training pairs and queries, the share
    of documents cut at the training length (the cleaning report's), and the recipe trained."""
    training = result.get("training") or {}
    setting = training.get("setting") or {}
    cfg = suite.training
    seq = setting.get("max_seq_length", cfg.max_seq_length)
    cut = next(
        (
            e
            for e in (data.cleaning or {}).get("too_long", [])
            if e["model"] == item.model.name
            and "training" in e["stage"]
            and seq in (None, e["max_seq_length"])
        ),
        None,
    )
    loss = item.loss
    if "loss" in setting:
        loss = next((x for x in suite.losses if x.name == setting["loss"]), loss)
    return {
        "pairs": training.get("pairs"),
        "queries": len(data.train.relevant()),
        "cut": cut
        and {
            "documents": cut["documents"],
            "max_seq_length": cut["max_seq_length"],
            "limit": cut.get("limit"),
        },
        "batch_size": setting.get("batch_size", cfg.batch_size),
        "learning_rate": setting.get("learning_rate", cfg.learning_rate),
        "epochs": setting.get("epochs", cfg.epochs),
        "loss_type": (training.get("memory") or {}).get("loss") or loss.type,
        "searched": suite.search is not None,
    }


def speed(result: dict, baseline: dict | None) -> dict | None:
    """``result``'s docs/s against its base model's plain sentence-transformers speed, or None."""
    plain = (baseline or {}).get("plain_st")
    own = (result.get("metrics") or {}).get("docs_per_s")
    if not plain or not own:
        return None
    return {
        "docs_per_s": own,
        "plain_st_docs_per_s": plain["docs_per_s"],
        "x_plain_st": round(own / plain["docs_per_s"], 2),
    }
