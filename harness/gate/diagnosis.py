"""Why a candidate did not gain, from what the run measured, and what to try next: the ``diagnosis``
of a candidate that is not better than its baseline or than the best reference (results.json, the
terminal and the report). Pure functions of the run's records; every suggestion names the signal it
rests on, and they are ranked by how strongly those signals point at them."""

from __future__ import annotations

import math

from harness.core.losses import IN_BATCH

#: a dev score change per epoch smaller than this is flat
FLAT = 0.002


def needs_diagnosis(comparison: dict, primary: str, metrics: dict) -> tuple[str, dict] | None:
    """``(against, its statistics)`` when the candidate is not better than its baseline (first) or than
    the reference with the best ``primary`` score (``metrics``: name -> that reference's metrics);
    None when it beats both."""
    base = (comparison.get("baseline") or {}).get(primary)
    if base is not None and base["verdict"] != "better":
        return "baseline", base
    scored = {n: m[primary] for n, m in metrics.items() if n in comparison and m and primary in m}
    if not scored:
        return None
    top = max(scored, key=scored.get)
    stats = comparison[top].get(primary)
    return (top, stats) if stats is not None and stats["verdict"] != "better" else None


def loss_signal(training: dict, loss_type: str, batch_size: int | None) -> dict | None:
    """The training loss at the start and the end; for an in-batch loss, against ln(the documents each
    query is ranked among), what a model that guesses scores."""
    losses = [h["loss"] for h in training.get("history", []) if h.get("loss") is not None]
    if not losses:
        return None
    out = {"first": losses[0], "last": losses[-1]}
    if loss_type in IN_BATCH and batch_size:
        docs = batch_size * max(1, len(training.get("columns") or ["a", "p"]) - 1)
        out["chance"] = round(math.log(docs), 4)
        out["ratio"] = round(losses[-1] / out["chance"], 4)
        out["ranked_among"] = docs
    return out


def dev_signal(training: dict, primary: str) -> dict | None:
    """The dev score after each epoch and its shape: rising at the end, peaked earlier, or flat."""
    values = [h[f"dev_{primary}"] for h in training.get("history", []) if f"dev_{primary}" in h]
    if not values:
        return None
    trend = "one epoch"
    if len(values) >= 2:
        last = values[-1] - values[-2]
        peak = max(range(len(values)), key=values.__getitem__)
        if last > FLAT:
            trend = "rising"
        elif peak < len(values) - 1 and values[peak] - values[-1] > FLAT:
            trend = "fell"
        else:
            trend = "flat"
    return {"per_epoch": [round(v, 4) for v in values], "trend": trend}


def rank1_share(per_query: dict) -> float | None:
    """The share of queries whose first result is relevant (reciprocal rank 1), over the queries that
    have a reciprocal rank."""
    for key in ("mrr@10", "mrr@100", "mrr@1"):
        values = [v[key] for v in per_query.values() if key in v]
        if values:
            return round(sum(x >= 1.0 - 1e-9 for x in values) / len(values), 4)
    return None


def signals(
    result: dict, baseline: dict | None, against: str, stats: dict, primary: str, loss_type: str, facts: dict
) -> dict:
    """Every measured signal (``facts``: ``pairs``, ``queries``, ``cut``, ``batch_size`` from the data
    and the suite)."""
    training = result.get("training") or {}
    mining = result.get("mining") or {}
    fn = (mining.get("likely_false_negatives") or {}).get("share")
    own_hybrid = next(iter((result.get("hybrid") or {}).values()), None)
    out = {
        "against": {
            "name": against,
            "gain": stats["gain"],
            "ci": [stats["ci_low"], stats["ci_high"]],
            "p_value": stats["p_value"],
            "verdict": stats["verdict"],
            "queries_better": stats["improved"],
            "queries_worse": stats["worsened"],
        },
        "loss": loss_signal(training, loss_type, facts.get("batch_size")),
        "dev": dev_signal(training, primary),
        "pairs": facts.get("pairs"),
        "queries": facts.get("queries"),
        "pairs_per_query": round(facts["pairs"] / facts["queries"], 2) if facts.get("queries") else None,
        "cut": facts.get("cut"),
        "baseline_rank1": rank1_share((baseline or {}).get("per_query") or {}),
        "false_negatives": fn,
        "mined": bool(mining),
        "hybrid": own_hybrid and own_hybrid.get("metrics", {}).get(primary),
        # its row (harness/gate/hybrids.py), named so when the suite has one hybrid reference
        "hybrid_row": f"{result.get('name')}+{own_hybrid['of']}"
        if own_hybrid and len(result.get("hybrid") or {}) == 1
        else None,
        "value": result.get("metrics", {}).get(primary),
    }
    return out


def suggestions(s: dict, primary: str, lr: float | None, epochs: int | None, searched: bool) -> list[dict]:
    """What to try next, strongest first: each with the signal it rests on and the settings to change."""
    out = []

    def add(score: float, what: str, why: str, setting: dict | None = None) -> None:
        out.append({"try": what, "why": why, "setting": setting or {}, "score": round(score, 4)})

    cut, loss, dev = s.get("cut"), s.get("loss"), s.get("dev")
    limit = (cut or {}).get("limit")
    if cut and cut["documents"] > 0.2 and (limit is None or cut["max_seq_length"] < limit):
        add(
            0.5 + cut["documents"],
            "longer texts",
            f"{cut['documents']:.0%} of the documents are cut at max_seq_length {cut['max_seq_length']}: the "
            "model never reads the rest" + (f" (it can read {limit} tokens)" if limit else ""),
            {"training.max_seq_length": "auto", "evaluation.max_seq_length": "auto"},
        )
    if loss and loss.get("ratio") is not None and loss["ratio"] > 0.4:
        add(
            loss["ratio"] + (0.3 if dev and dev["trend"] == "rising" else 0.0),
            "a higher learning rate",
            f"the training loss ended at {loss['last']:.3f}, {loss['ratio']:.0%} of "
            f"ln({loss['ranked_among']}) = {loss['chance']:.3f}, what guessing scores: the model barely "
            "learned",
            {"training.learning_rate": float(f"{lr * 3:.3g}")} if lr else {},
        )
    if dev and dev["trend"] == "rising":
        rise = dev["per_epoch"][-1] - dev["per_epoch"][-2]
        add(
            0.6 + min(0.4, rise * 20),
            "more epochs",
            f"dev {primary} was still rising at the last epoch ({rise:+.4f}): {dev['per_epoch']}",
            {"training.epochs": epochs * 2} if epochs else {},
        )
    if dev and dev["trend"] == "fell":
        add(
            0.4,
            "a lower learning rate",
            f"dev {primary} peaked before the last epoch and fell: {dev['per_epoch']} (the best epoch is "
            "kept, but the later ones overfit)",
            {"training.learning_rate": float(f"{lr / 2:.3g}")} if lr else {},
        )
    fn = s.get("false_negatives")
    if fn is not None and fn > 0.05:
        add(
            0.3 + 2 * fn,
            "fewer false negatives",
            f"{fn:.0%} of the mined negatives score at least as high as their positive (likely relevant "
            "documents nobody labelled)",
            {"losses.hard_negatives.range_min": 3, "losses.hard_negatives.absolute_margin": 0},
        )
    if not s.get("mined"):
        add(
            0.35,
            "mined hard negatives",
            "the candidate trained on in-batch negatives only, which are easy to tell apart",
            {"losses.hard_negatives.num_negatives": 1},
        )
    pairs, per = s.get("pairs"), s.get("pairs_per_query")
    if pairs is not None and pairs < 1000:
        add(
            0.3 + (1000 - pairs) / 2000,
            "more pairs",
            f"{pairs} training pairs ({per} per query): clicks, or queries generated from the corpus "
            "(the unlabeled source)",
        )
    against, hybrid, value = s["against"], s.get("hybrid"), s.get("value")
    if against["name"] != "baseline" and hybrid is not None and value is not None and hybrid > value:
        add(
            0.45 + (hybrid - value) * 5,
            "ship the hybrid",
            f"this model fused with BM25 scores {primary} {hybrid:.4f} against {value:.4f} alone; "
            f"{against['name']} is the best reference"
            + (
                f" (that row, {s['hybrid_row']}, ships with `harness release --candidate`)"
                if s.get("hybrid_row")
                else ""
            ),
        )
    r1 = s.get("baseline_rank1")
    if r1 is not None and r1 > 0.6:
        add(
            r1 - 0.3,
            "a harder test set, or keep the baseline",
            f"the untuned baseline already puts a relevant document first for {r1:.0%} of the test queries: "
            "little is left to gain",
        )
    if not searched:
        add(
            0.25,
            "a recipe search",
            "the recipe was not searched on dev: [search] with a few trials of learning rate and epochs",
            {"search.trials": 6, "search.learning_rate": "{low = 1e-5, high = 2e-4, log = true}"},
        )
    return sorted(out, key=lambda x: -x["score"])


def diagnose(
    result: dict, baseline: dict | None, comparison: dict, references: dict, primary: str, facts: dict
):
    """The candidate's ``diagnosis`` (None when it beats its baseline and the best reference):
    ``because`` (one line), the ``signals`` and the ranked ``suggestions``. ``facts``: ``pairs``,
    ``queries``, ``cut`` (the documents cut at the training length), ``batch_size``, ``learning_rate``,
    ``epochs``, ``loss_type`` and ``searched``."""
    found = needs_diagnosis(comparison, primary, references)
    if found is None:
        return None
    against, stats = found
    s = signals(result, baseline, against, stats, primary, facts.get("loss_type", ""), facts)
    because = (
        f"not better than {against} on {primary}: {stats['gain']:+.4f} [{stats['ci_low']:+.4f}, "
        f"{stats['ci_high']:+.4f}] ({stats['verdict']}; {stats['improved']} queries better, "
        f"{stats['worsened']} worse)"
    )
    ranked = suggestions(
        s, primary, facts.get("learning_rate"), facts.get("epochs"), facts.get("searched", False)
    )
    return {"because": because, "against": against, "signals": s, "suggestions": ranked}
