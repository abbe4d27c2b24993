"""The harness command end to end on the tiny model and synthetic pairs: exit codes, output contract."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.suite.training_tables import TrainingTable


def _latest(out, suite="tiny"):
    run = (out / suite / "latest").resolve()
    return run, json.loads((run / "results.json").read_text())


def test_run_end_to_end_passes_and_writes_the_contract(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite('[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\n')
    out = tmp_path / "out"
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q")
    assert code == 0, text
    run, doc = _latest(out)
    assert {"suite", "exit_code", "device", "candidates"} <= set(doc)
    assert doc["suite"] == "tiny" and doc["exit_code"] == 0 and doc["device"] == "cpu"
    names = {c["name"]: c for c in doc["candidates"]}
    assert set(names) == {"tiny-baseline", "tiny-mnrl"}
    cand, base = names["tiny-mnrl"], names["tiny-baseline"]
    assert base["baseline"] is True and cand["baseline"] is False
    for c in (cand, base):
        assert c["status"] == "passed"
        assert {"ndcg@10", "recall@10", "mrr@10", "map@10"} <= set(c["metrics"])
        assert c["encoder"]["format"] == "onnx" and c["encoder"]["provider"] == "CPUExecutionProvider"
        assert (run / c["encoder"]["file"]).is_file()
        assert c["export_check"]["min_cosine"] >= 0.999
    gate = cand["gates"][0]
    assert gate["kind"] == "min_gain" and gate["passed"] is True
    assert gate["value"] == pytest.approx(cand["metrics"]["ndcg@10"] - base["metrics"]["ndcg@10"], abs=1e-5)
    assert cand["training"]["steps"] > 0 and cand["training"]["chosen_by"].startswith("best dev")
    assert any("loss" in h for h in cand["training"]["history"])
    html = (run / "report.html").read_text()
    assert "tiny-mnrl" in html and "untuned baseline" in html
    assert "1 passed, 0 failed" in text


def test_failed_gate_exits_1_and_report_rerenders(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite('[[thresholds]]\nmetric = "ndcg@10"\nmin = 1.5\n')
    out = tmp_path / "out"
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q")
    assert code == 1, text
    run, doc = _latest(out)
    assert doc["exit_code"] == 1
    cand = next(c for c in doc["candidates"] if not c["baseline"])
    assert cand["status"] == "failed" and cand["gates"][0]["passed"] is False
    assert "0 passed, 1 failed" in text
    (run / "report.html").unlink()
    code, _ = run_cli("report", str(out / "tiny" / "latest"))
    assert code == 0 and (run / "report.html").is_file()


def test_collect_only_and_keyword_selection(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(
        '[[losses]]\nname = "cached"\ntype = "CachedMultipleNegativesRankingLoss"\nmini_batch_size = 8\n'
    )
    code, text = run_cli("run", str(suite), "--collect-only")
    assert code == 0
    assert "tiny::tiny-mnrl" in text and "tiny::tiny-cached" in text and "tiny::tiny-baseline" in text
    code, text = run_cli("run", str(suite), "--collect-only", "-k", "cached and not mnrl")
    assert code == 0 and "tiny-cached" in text and "tiny-mnrl" not in text and "tiny-baseline" in text
    code, text = run_cli("run", str(suite), "--collect-only", "-k", "nothing_matches_this")
    assert code == 5
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-k", "nothing_matches_this")
    assert code == 5
    code, text = run_cli("run", str(suite), "--collect-only", "-k", "(cached")
    assert code == 4 and "expected ')'" in text


def test_bad_suite_exits_4_with_every_problem_before_training(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(
        '[[thresholds]]\nmetric = "ndcg@11"\nmin = 0.5\n[[losses]]\nname = "x"\ntype = "NoSuchLoss"\n'
        '[[losses]]\nname = "y"\ntype = "MultipleNegativesRankingLoss"\nscale = 20.0\nscael = 1.0\n'
    )
    text = suite.read_text().replace('source = "jsonl"', 'source = "jsonl"\nsplits = 3')
    suite.write_text(text)
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"))
    assert code == 4
    assert "data.splits: unknown key for pair source 'jsonl'" in out
    assert "losses[1].type: unknown loss 'NoSuchLoss'" in out
    assert (
        "losses[2].scael: unknown key for loss 'MultipleNegativesRankingLoss'; did you mean 'scale'?" in out
    )
    assert "thresholds[0].metric: no evaluator produces the metric 'ndcg@11'" in out
    assert "nothing was run" in out
    assert not (tmp_path / "o").exists()
    code, out = run_cli("check", str(suite))
    assert code == 4 and "NoSuchLoss" in out


def test_missing_data_file_exits_4(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite()
    suite.write_text(suite.read_text().replace("train.jsonl", "missing.jsonl"))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 4 and "tiny.toml: data.train: no such file: " in out and "missing.jsonl" in out, out


def test_check_plugins_and_usage(tiny_suite, run_cli, tmp_path):
    code, out = run_cli("check", str(tiny_suite()))
    assert code == 0 and "ok:" in out
    code, out = run_cli("plugins")
    assert code == 0 and "pair source beir" in out and "evaluator retrieval" in out
    code, out = run_cli("check", "--keys")  # every key, its default as a suite would write it
    assert code == 0 and "  refit (true or false, default false): " in out
    assert (
        '  evaluators (a list of strings, default ["retrieval"]): ' in out
        and "  revision (a string or nothing, unset by default)" in out
    )
    assert all(
        f"\n  {f.name} (" in out.split("[training]")[1].split("[evaluation]")[0]
        for f in dataclasses.fields(TrainingTable)
    )
    code, out = run_cli("run", "--no-such-flag")
    assert code == 4
    code, out = run_cli("run", str(tmp_path / "nope.toml"))
    assert code == 4 and "no such suite file" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_skipped.toml").write_text("not toml at all [")
    code, out = run_cli("run", str(empty))
    assert code == 5


def test_a_candidate_error_does_not_stop_the_others(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(
        '[[losses]]\nname = "broken"\ntype = "MultipleNegativesRankingLoss"\n'
        'similarity_fct = "not-a-function"\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\n'
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 1
    doc = json.loads((tmp_path / "o" / "tiny" / "latest" / "results.json").read_text())
    status = {c["name"]: c["status"] for c in doc["candidates"]}
    assert status == {"tiny-baseline": "passed", "tiny-mnrl": "passed", "tiny-broken": "error"}
    assert "1 passed, 0 failed, 1 error" in text


def test_shipped_glossary_plugin_through_a_suite(tiny_suite, run_cli, tmp_path):
    from pathlib import Path

    from .conftest import synthetic_pairs

    rows = synthetic_pairs(60, 9)
    (tmp_path / "terms.tsv").write_text("".join(f"{r['query']}\t{r['document']}\n" for r in rows))
    plugin = Path(__file__).resolve().parents[1] / "plugins" / "glossary.py"
    suite = tiny_suite(
        name="gloss.toml",
        data='source = "glossary"\nfile = "terms.tsv"\ndev_fraction = 0.2',
        plugins=(plugin,),
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 0, text
    doc = json.loads((tmp_path / "o" / "gloss" / "latest" / "results.json").read_text())
    assert doc["data"]["test_queries"] == 12 and doc["data"]["corpus"] == 60
    code, text = run_cli("plugins", "-p", str(plugin))
    assert "pair source glossary: term -> definition pairs" in text


def test_exitfirst_stops_after_the_first_failure(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(
        '[[losses]]\nname = "second"\ntype = "MultipleNegativesSymmetricRankingLoss"\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin = 1.5\n'
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q", "-x")
    assert code == 1
    doc = json.loads((tmp_path / "o" / "tiny" / "latest" / "results.json").read_text())
    assert [c["name"] for c in doc["candidates"]] == ["tiny-baseline", "tiny-mnrl"]
    assert doc["not_run"] == ["tiny-second"]


def test_interrupt_exits_2_and_keeps_what_was_computed(tiny_suite, tmp_path):
    """SIGINT during training: exit 2, results.json keeps the baseline and says exit_code 2."""
    import os
    import signal
    import subprocess
    import sys
    import time

    suite = tiny_suite()
    suite.write_text(suite.read_text().replace("epochs = 2", "epochs = 500"))
    out = tmp_path / "o"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(suite), "--out", str(out), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.time() + 240
    seen = ""
    for line in proc.stdout:
        seen += line
        if line.startswith("    epoch 1:") and "tiny-mnrl ... training" in seen:
            proc.send_signal(signal.SIGINT)  # training is under way: its first epoch is done
            break
        assert time.time() < deadline, seen
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, seen + rest
    results = list(out.glob("tiny/*/results.json"))
    doc = json.loads(results[0].read_text())
    assert doc["exit_code"] == 2
    assert [c["name"] for c in doc["candidates"] if c["status"] == "passed"] == ["tiny-baseline"]
    assert not list(out.glob("tiny/*/models/*/harness-train-*"))  # no checkpoint folder is left behind
    assert "0 passed, 0 failed, 1 interrupted, 1 baseline(s)" in rest, rest


def test_unchanged_baseline_evaluation_is_reused(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite('[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\n')
    out = tmp_path / "o"
    code, _ = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q", "-k", "baseline")
    assert code == 0
    first = json.loads((out / "tiny" / "latest" / "results.json").read_text())["candidates"][0]
    assert first["evaluation_cached_from"] is None
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q", "-k", "baseline")
    second = json.loads((out / "tiny" / "latest" / "results.json").read_text())["candidates"][0]
    assert second["evaluation_cached_from"] and "reused from" in text
    assert second["metrics"] == first["metrics"]
    code, text = run_cli(
        "run", str(suite), "--out", str(out), "--device", "cpu", "-q", "-k", "baseline", "--no-cache"
    )
    third = json.loads((out / "tiny" / "latest" / "results.json").read_text())["candidates"][0]
    quality = lambda m: {k: v for k, v in m.items() if k != "docs_per_s"}  # noqa: E731 - speed is measured anew
    assert third["evaluation_cached_from"] is None and quality(third["metrics"]) == quality(first["metrics"])


def test_history_from_other_data_is_warned(tiny_suite, run_cli, tmp_path, pair_files):
    suite = tiny_suite()
    out = tmp_path / "o"
    assert run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q", "-k", "baseline")[0] == 0
    with (pair_files / "test.jsonl").open("a") as f:
        f.write(json.dumps({"query": "what is w1 w2", "document": "the w1 of w2"}) + "\n")
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q", "-k", "baseline")
    assert code == 0 and "used other data" in text and "the history mixes datasets" in text


def test_data_warnings_reach_results_and_report(tiny_suite, run_cli, tmp_path, pair_files):
    train_doc = json.loads((pair_files / "train.jsonl").read_text().splitlines()[0])["document"]
    with (pair_files / "test.jsonl").open("a") as f:
        f.write(json.dumps({"query": "a new test question", "document": train_doc}) + "\n")
    code, text = run_cli(
        "run", str(tiny_suite()), "--out", str(tmp_path / "o"), "--device", "cpu", "-q", "-k", "baseline"
    )
    assert code == 0 and "also training positives" in text
    run_dir = tmp_path / "o" / "tiny" / "latest"
    assert any(
        "also training positives" in w
        for w in json.loads((run_dir / "results.json").read_text())["data"]["warnings"]
    )
    assert "data warnings" in (run_dir / "report.html").read_text()


def test_unknown_pair_source_and_evaluator_exit_4(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(data='source = "jsnol"')
    suite.write_text(
        suite.read_text().replace("[evaluation]\n", '[evaluation]\nevaluators = ["retreival"]\n')
    )
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"))
    assert code == 4
    assert "data.source: unknown pair source 'jsnol'; did you mean 'jsonl'?" in out
    assert "evaluation.evaluators[0]: unknown evaluator 'retreival'; did you mean 'retrieval'?" in out
    assert not (tmp_path / "o").exists()


def test_every_shipped_suite_and_profile_is_valid(run_cli, shipped_suite_data):
    """suites/*.toml with every profile they declare (``harness check`` type-checks each one)."""
    suites = Path(__file__).resolve().parents[1] / "suites"
    code, out = run_cli("check", str(suites))
    assert code == 0, out
    assert out.count("ok: ") == len(list(suites.glob("*.toml"))) >= 6
    assert "gpu-settings-on-cpu" in out


def test_exit_codes_are_documented_the_same_in_help_and_readme(run_cli):
    from harness.exitcodes import ExitCode

    code, text = run_cli("--help")
    assert code == 0
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for c in ExitCode:
        assert f"| {int(c)} | `{c.name}` | {c.meaning} |" in readme, c
        assert f"{int(c)} {c.name}: " in text, c
