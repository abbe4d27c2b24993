"""After shipping: `harness ab` (A/B logs, interleaved logs, simulation), `harness interleave`, and
`harness drift` against a release's drift profile, on the tiny data; bad logs exit 4 naming the
file and line, and write nothing."""

from __future__ import annotations

import json
import random

import pytest

from harness.data.impressions import Impression
from harness.monitor import abtest, clickmodel, interleave
from tests.conftest import chromium_page, needs_chromium

# --- A/B analysis on logs made by a known click model ---------------------------------------------


def _runs(n_queries: int = 60, seed: int = 0):
    """A good ranker (the relevant document first) and a poor one (it at rank 6), and judgements."""
    rng = random.Random(seed)
    good, poor, qrels = {}, {}, []
    for q in range(n_queries):
        docs = [f"d{q}-{i}" for i in range(10)]
        rng.shuffle(docs)
        rel = docs[0]
        qrels.append((f"q{q}", rel, 1))
        good[f"q{q}"] = docs
        poor[f"q{q}"] = docs[1:6] + [rel] + docs[6:]
    return good, poor, qrels


def test_the_better_arm_is_named_with_an_interval_above_zero():
    good, poor, qrels = _runs()
    imps = clickmodel.simulate_ab({"old": poor, "new": good}, qrels, 1500, seed=1)
    doc = abtest.analyse(imps, "old", None)
    mrr = next(c for c in doc["comparisons"] if c["metric"] == "mrr")
    assert mrr["arm"] == "new" and mrr["verdict"] == "better" and mrr["ci_low"] > 0
    assert mrr["impressions_needed"] < 1500
    aband = next(c for c in doc["comparisons"] if c["metric"] == "abandonment")
    assert aband["gain"] <= 0 and aband["verdict"] in ("better", "not distinguishable")
    assert abtest.decision(doc, "mrr", 0.0)[0]
    assert not abtest.decision(doc, "mrr", 0.9)[0]  # a min-gain it does not reach


def test_two_arms_of_the_same_ranker_are_told_apart_at_about_the_test_level():
    """The false-positive rate of the A/B verdict (alpha 0.05) over 100 seeds stays near 5%."""
    good, _, qrels = _runs()
    told_apart = 0
    for seed in range(100):
        imps = clickmodel.simulate_ab({"a": good, "b": good}, qrels, 600, seed=seed)
        comp = next(c for c in abtest.analyse(imps, "a", None, seed)["comparisons"] if c["metric"] == "mrr")
        told_apart += comp["verdict"] != "not distinguishable"
    assert told_apart <= 10


def test_team_draft_takes_turns_and_credits_clicks_to_the_team():
    a, b = ["x1", "x2", "x3", "s"], ["s", "y1", "y2", "y3"]
    shown, teams = interleave.team_draft(a, b, 6, random.Random(0))
    assert len(set(shown)) == len(shown) == 6
    assert abs(teams.count(0) - teams.count(1)) <= 1
    imp = Impression("q", tuple(shown), (shown[teams.index(1)],), teams=tuple("AB"[t] for t in teams))
    assert interleave.credit(imp, "A", "B") == -1
    shown, teams = interleave.balanced(a, b, 8, random.Random(1))
    assert sorted(shown) == sorted(set(a) | set(b))


def test_interleaving_finds_the_better_run_with_fewer_impressions_than_an_ab_split():
    good, poor, qrels = _runs()
    n = 150
    il = interleave.analyse_interleaved(
        clickmodel.simulate_interleaved(good, poor, ("good", "poor"), qrels, n, seed=3), ("good", "poor")
    )
    ab = abtest.analyse(clickmodel.simulate_ab({"poor": poor, "good": good}, qrels, n, seed=3), "poor", None)
    pref = il["comparisons"][0]
    assert pref["arm"] == "good" and pref["verdict"] == "better"
    mrr = next(c for c in ab["comparisons"] if c["metric"] == "mrr")
    assert pref["impressions_needed"] < mrr["impressions_needed"]


# --- the command line ------------------------------------------------------------------------------


def follows(doc: dict, schema: str) -> None:
    """``doc`` follows harness/monitor/<schema>.schema.json."""
    from pathlib import Path

    import jsonschema

    import harness.monitor

    path = Path(harness.monitor.__file__).parent / f"{schema}.schema.json"
    jsonschema.validate(doc, json.loads(path.read_text()))


def _write_log(path, imps):
    path.write_text("".join(json.dumps(clickmodel.impression_record(i)) + "\n" for i in imps))


def test_ab_command_writes_the_interface_and_exits_by_the_verdict(tmp_path, run_cli):
    good, poor, qrels = _runs()
    imps = clickmodel.simulate_ab({"control": poor, "new": good}, qrels, 1500, seed=2)
    for arm in ("control", "new"):  # one file per arm, named by its stem, no arm column
        _write_log(
            tmp_path / f"{arm}.jsonl", [Impression(i.query, i.shown, i.clicked) for i in imps if i.arm == arm]
        )
    out = tmp_path / "ab.json"
    code, text = run_cli(
        "ab", str(tmp_path / "control.jsonl"), str(tmp_path / "new.jsonl"), "--json", str(out)
    )
    assert code == 0, text
    doc = json.loads(out.read_text())
    follows(doc, "ab")
    assert set(doc["arms"]) == {"control", "new"} and doc["control"] == "control"
    keys = {
        "arm",
        "against",
        "metric",
        "gain",
        "ci_low",
        "ci_high",
        "p_value",
        "verdict",
        "impressions_needed",
    }
    assert {c["metric"] for c in doc["comparisons"]} == {"ctr", "mrr", "clicks@10", "abandonment"}
    assert all(keys <= set(c) for c in doc["comparisons"])
    code, text = run_cli(
        "ab", str(tmp_path / "control.jsonl"), str(tmp_path / "new.jsonl"), "--min-gain", "0.9"
    )
    assert code == 1, text
    code, text = run_cli(
        "ab", str(tmp_path / "control.jsonl"), str(tmp_path / "new.jsonl"), "--control", "nope"
    )
    assert code == 4 and "--control 'nope'" in text and "control" in text


def test_interleave_then_ab_interleaved(tmp_path, run_cli):
    good, poor, qrels = _runs()
    for name, run in (("good", good), ("poor", poor)):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps({"query": q, "ranking": r}) + "\n" for q, r in run.items())
        )
    lists = tmp_path / "lists.jsonl"
    code, text = run_cli(
        "interleave",
        str(tmp_path / "good.jsonl"),
        str(tmp_path / "poor.jsonl"),
        "--out",
        str(lists),
        "--repeat",
        "5",
    )
    assert code == 0, text
    rows = [json.loads(x) for x in lists.read_text().splitlines()]
    assert len(rows) == 300 and {"query", "shown", "teams"} <= set(rows[0])
    rel = clickmodel.levels(qrels)
    rng = random.Random(0)
    for r in rows:  # the users click
        r["clicked"] = clickmodel.cascade_clicks(r["shown"], rel[r["query"]], "navigational", rng)
    log = tmp_path / "clicked.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "il.json"
    code, text = run_cli("ab", "--interleaved", str(log), "--json", str(out))
    assert code == 0, text
    follows(json.loads(out.read_text()), "ab")
    (c,) = json.loads(out.read_text())["comparisons"]
    assert (c["arm"], c["against"], c["verdict"]) == ("good", "poor", "better")


def test_simulate_writes_logs_that_ab_reads_back(tmp_path, run_cli):
    good, poor, qrels = _runs()
    for name, run in (("good", good), ("poor", poor)):
        (tmp_path / f"{name}.trec").write_text(
            "".join(
                f"{q} Q0 {d} {i + 1} {1 / (i + 1):.3f} {name}\n"
                for q, r in run.items()
                for i, d in enumerate(r)
            )
        )
    (tmp_path / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in qrels)
    )
    out = tmp_path / "sim.json"
    runs = [str(tmp_path / "good.trec"), str(tmp_path / "poor.trec")]
    code, text = run_cli(
        "ab", "--simulate", *runs, "--qrels", str(tmp_path / "qrels.tsv"), "--impressions", "1500",
        "--log", str(tmp_path / "sim"), "--json", str(out),
    )  # fmt: skip
    assert code == 0, text
    doc = json.loads(out.read_text())
    follows(doc, "ab")
    assert doc["click_model"]["name"] == "navigational" and doc["control"] == "poor"
    code, text = run_cli("ab", str(tmp_path / "sim.ab.jsonl"), "--control", "poor")
    assert code == 0, text
    code, text = run_cli("ab", "--interleaved", str(tmp_path / "sim.interleaved.jsonl"))
    assert code == 0, text


BAD_LOGS = [
    ('{"query": "q", "clicked": []}\n', "no column 'shown'", 0),
    ('{"query": "q", "shown": ["a"], "clicked": []}\n{"query": "q", "shown": ["a", "b"], "clicked": ["c"]}\n',
     "clicked id 'c' is not among the ids shown", 2),
    ('{"query": "q", "shown": [], "clicked": []}\n', "column 'shown' is empty", 1),
    ("", "the file is empty", 0),
    (b'{"query": "caf\xe9", "shown": ["a"], "clicked": []}\n', "UTF-8", 1),
]  # fmt: skip


@pytest.mark.parametrize("body,message,line", BAD_LOGS)
def test_bad_logs_exit_4_naming_the_file_and_line(tmp_path, run_cli, body, message, line):
    log = tmp_path / "arm.jsonl"
    log.write_bytes(body if isinstance(body, bytes) else body.encode())
    (tmp_path / "other.jsonl").write_text('{"query": "q", "shown": ["a"], "clicked": ["a"]}\n')
    out = tmp_path / "out.json"
    code, text = run_cli("ab", str(log), str(tmp_path / "other.jsonl"), "--json", str(out))
    assert code == 4, text
    assert message in text and str(log) in text
    if line:
        assert f"{log}:{line}" in text
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


# --- drift -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_model):
    from tests.conftest import run_in_process, tiny_suite_factory, write_pair_files

    tmp = tmp_path_factory.mktemp("drift")
    pairs = write_pair_files(tmp)
    suite = tiny_suite_factory(tmp, tiny_model, pairs)(
        '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\n'
    )
    code, text = run_in_process(tmp, "run", str(suite), "--out", str(tmp / "out"), "--device", "cpu", "-q")
    assert code == 0, text
    code, text = run_in_process(
        tmp, "release", str(tmp / "out" / "tiny" / "latest"), "--to", str(tmp / "art")
    )
    assert code == 0, text
    return tmp, pairs


def test_release_writes_a_drift_profile_and_drift_flags_another_domain(released):
    from tests.conftest import run_in_process

    tmp, pairs = released
    manifest = json.loads((tmp / "art" / "harness-artifact.json").read_text())
    assert manifest["drift"]["train_queries"] > 20 and manifest["drift"]["test_queries"] == 20
    same = tmp / "same.jsonl"
    same.write_text(
        "".join(
            json.dumps({"query": json.loads(x)["query"]}) + "\n"
            for x in (pairs / "test.jsonl").read_text().splitlines()
        )
    )
    out = tmp / "drift.json"
    code, text = run_in_process(tmp, "drift", str(tmp / "art"), "--queries", str(same), "--json", str(out))
    assert code == 0, text
    doc = json.loads(out.read_text())
    follows(doc, "drift")
    assert doc["verdict"] == "ok" and {c["name"] for c in doc["checks"]} >= {
        "new_terms",
        "query_embeddings",
        "top1_similarity",
    }
    other = tmp / "code.csv"
    other.write_text(
        "query\n" + "".join(f"how to sort a python list number {i} with lambda\n" for i in range(30))
    )
    code, text = run_in_process(tmp, "drift", str(tmp / "art"), "--queries", str(other), "--json", str(out))
    assert code == 1, text
    doc = json.loads(out.read_text())
    assert doc["drifted"] and doc["examples"] and "python" in doc["examples"][0]["new_terms"]
    # a threshold makes the same queries that passed exit 1
    code, text = run_in_process(
        tmp, "drift", str(tmp / "art"), "--queries", str(same), "--max-top1-drop", "-1"
    )
    assert code == 1 and "RETRAIN" in text, text


def test_the_scheduled_retraining_example_runs_end_to_end(released, tiny_model):
    """examples/retrain/retrain_on_drift.sh: drift flags, the suite retrains on the click log (the
    `harness ab` format, read by the clicks source), beats production by its gate, and releases."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import DATA_DIR, tiny_suite_factory

    tmp, pairs = released
    rows = [
        json.loads(x) for f in ("train.jsonl", "test.jsonl") for x in (pairs / f).read_text().splitlines()
    ]
    docs = sorted({r["document"] for r in rows})
    ids = {d: f"doc{i}" for i, d in enumerate(docs)}
    (tmp / "corpus.jsonl").write_text("".join(json.dumps({"id": ids[d], "text": d}) + "\n" for d in docs))
    rng = random.Random(0)
    with (tmp / "clicks.jsonl").open("w") as f:
        for r in rows:
            shown = [ids[r["document"]]] + rng.sample([ids[d] for d in docs if d != r["document"]], 4)
            rng.shuffle(shown)
            f.write(json.dumps({"query": r["query"], "shown": shown, "clicked": [ids[r["document"]]]}) + "\n")
    (tmp / "retrain").mkdir()
    suite = tiny_suite_factory(tmp / "retrain", tiny_model, pairs)(  # the production suite, new data
        '[[thresholds]]\nmetric = "ndcg@10"\nmax_drop = 1.0\nagainst = "compare"\n',
        data=f'source = "clicks"\nfile = "{tmp / "clicks.jsonl"}"\ncorpus = "{tmp / "corpus.jsonl"}"\n',
    )
    queries = tmp / "recent.csv"
    queries.write_text(
        "query\n" + "".join(f"how to sort a python list number {i} with lambda\n" for i in range(30))
    )
    env = {**os.environ, "HARNESS": f"{sys.executable} -m harness", "HARNESS_DATA_DIR": str(DATA_DIR),
           "HF_HUB_OFFLINE": "1", "HARNESS_CACHE_DIR": str(tmp / "cache")}  # fmt: skip
    script = Path(__file__).parents[1] / "examples" / "retrain" / "retrain_on_drift.sh"
    out = tmp / "weekly"
    p = subprocess.run(
        ["bash", str(script), str(tmp / "art"), str(queries), str(suite), str(out)],
        capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1], timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads((out / "drift.json").read_text())["verdict"] == "retrain"
    manifest = json.loads((out / "release" / "harness-artifact.json").read_text())
    assert manifest["data"]["source"] == "clicks" and manifest["drift"]["train_queries"] > 20
    (run,) = (out / "reports").glob("*/latest")  # the new run's report shows the drift that started it
    assert (run / "monitor" / "drift-drift.json").is_file() and 'id="after-shipping"' in (
        run / "report.html"
    ).read_text()


# --- the report's after-shipping section ----------------------------------------------------------


@needs_chromium
def test_the_report_shows_ab_and_drift_figures_in_a_section_of_its_own(released, tmp_path):
    from tests.conftest import run_in_process

    tmp, _ = released
    run = tmp / "out" / "tiny" / "latest"
    good, poor, qrels = _runs()
    log = tmp_path / "week.jsonl"
    _write_log(log, clickmodel.simulate_ab({"control": poor, "new": good}, qrels, 1500, seed=2))
    ab = tmp_path / "ab.json"
    assert run_in_process(tmp, "ab", str(log), "--control", "control", "--json", str(ab))[0] == 0
    code_queries = tmp_path / "code.csv"
    code_queries.write_text(
        "query\n" + "".join(f"how to sort a python list {i} with lambda\n" for i in range(30))
    )
    drift = tmp_path / "drift.json"
    assert (
        run_in_process(tmp, "drift", str(tmp / "art"), "--queries", str(code_queries), "--json", str(drift))[
            0
        ]
        == 1
    )
    # the wrong file for an option, or a damaged one: exit 4 naming it, and nothing kept
    code, text = run_in_process(tmp, "report", str(run), "--ab", str(ab), "--drift", str(ab))
    assert code == 4 and str(ab) in text and "harness ab --json" in text, text
    damaged = tmp_path / "damaged.json"
    damaged.write_text(ab.read_text()[:-40])
    code, text = run_in_process(tmp, "report", str(run), "--ab", str(damaged))
    assert code == 4 and f"{damaged}" in text and "not valid JSON" in text, text
    assert not (run / "monitor").exists()
    code, text = run_in_process(tmp, "report", str(run), "--ab", str(ab), "--drift", str(drift))
    assert code == 0, text
    assert run_in_process(tmp, "report", str(run))[0] == 0  # kept: a later re-render still shows them
    with chromium_page((run / "report.html").resolve()) as (page, errors, requests):
        assert errors == [] and len(requests) == 1
        section = page.locator("#after-shipping")
        assert section.count() == 1 and page.locator("section.monitor").count() == 2
        ab_doc = json.loads(ab.read_text())
        arms = page.inner_text("section.ab .ab-arms")
        assert "new" in arms and "(control)" in arms and f"{ab_doc['arms']['new']['mrr']:.4f}" in arms
        comparisons = page.locator("section.ab .ab-comparisons tbody tr")
        assert comparisons.count() == len(ab_doc["comparisons"]) == 4
        mrr = next(c for c in ab_doc["comparisons"] if c["metric"] == "mrr")
        text = page.inner_text("section.ab .ab-comparisons")
        assert f"[{mrr['ci_low']:+.4f}, {mrr['ci_high']:+.4f}]" in text and "better" in text
        assert f"{mrr['impressions_needed']:,}" in text
        assert "drifted: retrain" in page.inner_text("section.drift")
        checks = page.inner_text("section.drift .drift-checks")
        auc = json.loads(drift.read_text())["embeddings"]["auc"]
        assert "query_embeddings" in checks and f"{auc:.4f}" in checks and "drifted" in checks
        assert "python" in page.inner_text("section.drift .drift-examples")
