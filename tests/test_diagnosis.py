"""Issue 32, part 4: a candidate that does not beat its baseline or the best reference carries a
diagnosis (measured signals, ranked suggestions): the pure functions on records, and a real tiny run
whose learning rate is far too low."""

from __future__ import annotations

import json
import math
import shlex

import pytest

from harness.gate.diagnosis import dev_signal, diagnose, loss_signal, needs_diagnosis


def stats(gain: float, verdict: str) -> dict:
    return {
        "gain": gain,
        "ci_low": gain - 0.02,
        "ci_high": gain + 0.02,
        "p_value": 0.01 if verdict != "not distinguishable" else 0.4,
        "verdict": verdict,
        "improved": 10,
        "worsened": 12,
    }


def record(losses, devs, columns=("anchor", "positive")) -> dict:
    history = [{"loss": v, "step": i} for i, v in enumerate(losses)]
    history += [{"epoch": i + 1, "dev_ndcg@10": v} for i, v in enumerate(devs)]
    return {
        "metrics": {"ndcg@10": 0.68},
        "training": {"history": history, "columns": list(columns), "pairs": 800},
    }


FACTS = {
    "pairs": 800,
    "queries": 700,
    "cut": None,
    "batch_size": 32,
    "learning_rate": 2e-5,
    "epochs": 2,
    "loss_type": "MultipleNegativesRankingLoss",
    "searched": False,
}


def test_no_diagnosis_for_a_candidate_better_than_its_baseline_and_the_best_reference():
    comparison = {"baseline": {"ndcg@10": stats(0.04, "better")}, "bm25": {"ndcg@10": stats(0.01, "better")}}
    refs = {"bm25": {"ndcg@10": 0.66}}
    assert needs_diagnosis(comparison, "ndcg@10", refs) is None
    assert diagnose(record([3, 1], [0.7]), None, comparison, refs, "ndcg@10", FACTS) is None
    # not better than the best reference (the hybrid, above BM25): diagnosed against it
    comparison["hybrid"] = {"ndcg@10": stats(-0.038, "worse")}
    refs["hybrid"] = {"ndcg@10": 0.72}
    assert needs_diagnosis(comparison, "ndcg@10", refs)[0] == "hybrid"


def test_the_signals_are_measured_and_the_suggestions_follow_them():
    comparison = {"baseline": {"ndcg@10": stats(0.006, "not distinguishable")}}
    # the loss ended near what guessing scores among 32 documents (ln 32 = 3.47), dev still rising
    d = diagnose(record([3.4, 3.0, 2.81], [0.60, 0.62]), None, comparison, {}, "ndcg@10", FACTS)
    s = d["signals"]
    assert s["loss"]["chance"] == pytest.approx(math.log(32), abs=1e-4)
    assert s["loss"]["ratio"] == pytest.approx(2.81 / math.log(32), abs=1e-3)
    assert s["dev"] == {"per_epoch": [0.6, 0.62], "trend": "rising"} and d["against"] == "baseline"
    tries = [x["try"] for x in d["suggestions"]]
    assert tries[0] == "a higher learning rate", tries
    assert d["suggestions"][0]["setting"] == {"training.learning_rate": 6e-5}
    assert "more epochs" in tries and "mined hard negatives" in tries and "a recipe search" in tries
    assert d["because"].startswith("not better than baseline on ndcg@10: +0.0060 [")
    # texts cut for most documents come first when the loss did fall; one mined negative per pair
    # doubles the documents a query is ranked among
    facts = {**FACTS, "cut": {"documents": 0.98, "max_seq_length": 128, "limit": 512}, "searched": True}
    d = diagnose(
        record([3.0, 0.2], [0.70, 0.70], ("anchor", "positive", "negative_1")),
        None,
        comparison,
        {},
        "ndcg@10",
        facts,
    )
    assert d["signals"]["loss"]["ranked_among"] == 64 and d["signals"]["dev"]["trend"] == "flat"
    tries = [x["try"] for x in d["suggestions"]]
    assert (
        tries[0] == "longer texts"
        and "a higher learning rate" not in tries
        and "a recipe search" not in tries
    )
    assert d["suggestions"][0]["setting"] == {
        "training.max_seq_length": "auto",
        "evaluation.max_seq_length": "auto",
    }
    # texts cut at the most the model can read: longer texts are no suggestion
    at_limit = {**facts, "cut": {"documents": 0.98, "max_seq_length": 512, "limit": 512}}
    d = diagnose(record([3.0, 0.2], [0.70, 0.70]), None, comparison, {}, "ndcg@10", at_limit)
    assert "longer texts" not in [x["try"] for x in d["suggestions"]]


def test_every_suggested_setting_is_one_a_suite_takes():
    """Each suggestion's setting, given as ``--set`` on a shipped suite (the terminal prints it so), loads:
    no suggestion names a key or a value the suite would refuse. Keys in arrays of tables (a loss's
    hard negatives) are shown as ``key = value`` for the file instead."""
    from pathlib import Path

    from harness.builtin.terminal import setting_text
    from harness.gate.diagnosis import suggestions
    from harness.suite.load import load_suite, parse_overrides

    s = {
        "against": {"name": "hybrid"},
        "loss": {"first": 3.4, "last": 3.0, "ratio": 0.86, "ranked_among": 32, "chance": 3.47},
        "dev": {"per_epoch": [0.70, 0.72], "trend": "rising"},
        "pairs": 500,
        "pairs_per_query": 1.1,
        "cut": {"documents": 0.7, "max_seq_length": 256, "limit": 512},
        "baseline_rank1": 0.7,
        "false_negatives": 0.2,
        "mined": False,
        "hybrid": 0.73,
        "value": 0.70,
    }
    ranked = suggestions(s, "ndcg@10", 1e-4, 2, searched=False)
    ranked += suggestions(
        {**s, "dev": {"per_epoch": [0.72, 0.70], "trend": "fell"}}, "ndcg@10", 1e-4, 2, False
    )
    assert len({x["try"] for x in ranked}) >= 9, [x["try"] for x in ranked]
    suite = Path(__file__).resolve().parents[1] / "suites" / "scifact.toml"
    for x in ranked:
        text = setting_text(x["setting"])
        if not x["setting"] or not text.startswith("--set "):
            continue
        given = [w for w in shlex.split(text) if w != "--set"]
        loaded = load_suite(suite, None, "cpu", parse_overrides(given))
        for k, v in x["setting"].items():
            table, name = k.split(".")
            assert getattr(getattr(loaded, table), name) == (
                parse_overrides([f"{k}={v}"])[0][1] if isinstance(v, str) else v
            ), (x, getattr(getattr(loaded, table), name))


def test_dev_shapes_and_a_loss_that_is_not_in_batch():
    assert dev_signal(record([], [0.7, 0.75, 0.71])["training"], "ndcg@10")["trend"] == "fell"
    assert dev_signal(record([], [0.7])["training"], "ndcg@10")["trend"] == "one epoch"
    assert dev_signal({"history": []}, "ndcg@10") is None
    assert "chance" not in loss_signal(record([1.0, 0.5], [])["training"], "CoSENTLoss", 32)


def test_a_tiny_candidate_that_barely_learned_is_diagnosed_in_results_terminal_and_report(
    tiny_suite, run_cli, tmp_path
):
    suite = tiny_suite()
    suite.write_text(suite.read_text().replace("learning_rate = 1e-3", "learning_rate = 1e-9"))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "out"), "--device", "cpu")
    assert code == 0, out  # no thresholds: the diagnosis says why, it does not gate
    run_dir = tmp_path / "out" / "tiny" / "latest"
    doc = json.loads((run_dir / "results.json").read_text())
    c = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl")
    d = c["diagnosis"]
    assert d["against"] == "baseline" and d["signals"]["loss"]["ratio"] > 0.4, d
    assert d["signals"]["pairs"] == c["training"]["pairs"]
    assert d["suggestions"][0]["try"] == "a higher learning rate", d["suggestions"]
    assert "diagnosis: not better than baseline" in out and "1. try a higher learning rate" in out
    # the line says how to try it: those --set options, given as printed, are what the next run trains with
    line = next(x for x in out.splitlines() if "1. try a higher learning rate" in x)
    given = shlex.split(line.split("(", 1)[1].split(")", 1)[0])
    assert given[0] == "--set" and given[1].startswith("training.learning_rate="), line
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "again"), "--device", "cpu", *given)
    assert code == 0, out
    again = json.loads((tmp_path / "again" / "tiny" / "latest" / "results.json").read_text())
    assert again["overrides"] == [given[1]]
    assert again["training"]["learning_rate"] == d["suggestions"][0]["setting"]["training.learning_rate"]
    html = (run_dir / "report.html").read_text()
    assert 'id="diagnosis"' in html and "of guessing" in html
    base = next(c for c in doc["candidates"] if c["name"] == "tiny-baseline")
    assert "diagnosis" not in base or base["diagnosis"] is None
