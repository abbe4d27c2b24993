"""Faults and interruptions: kill -9 then --resume, reproducibility, faults in one candidate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

TWO_LOSSES = (
    '[[losses]]\nname = "sym"\ntype = "MultipleNegativesSymmetricRankingLoss"\n'
    '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\n'
)


def _quality(result: dict) -> dict:
    return {k: v for k, v in result["metrics"].items() if k != "docs_per_s"}  # speed is measured anew


def test_sigkill_then_resume_redoes_only_unfinished_work_and_matches_an_uninterrupted_run(
    tiny_suite, run_cli, tmp_path
):
    suite = tiny_suite(TWO_LOSSES, export='variants = ["fp32", "O2"]\nship = "O2"\n')
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HARNESS_CACHE_DIR": str(tmp_path / "cache-killed")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(suite), "--out", str(killed), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    seen = ""
    for line in proc.stdout:  # the second candidate starts training once the first is written
        seen += line
        if "tiny-sym ... training" in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed:\n{seen}"
    run_dir = next(killed.glob("tiny/2*"))
    try:  # whole: written to a temp file, then renamed
        names = [c["name"] for c in json.loads((run_dir / "results.json").read_text())["candidates"]]
    except ValueError:
        pytest.fail("results.json was half-written")
    assert names == ["tiny-baseline", "tiny-mnrl"], seen

    code, text = run_cli("run", str(suite), "--out", str(killed), "--device", "cpu", "-q", "--resume")
    assert code == 0, text
    assert text.count("re-used (--resume)") == 2 and "tiny-sym ... training" in text, text
    assert text.count("trained on ") == 1  # only the unfinished candidate trained again
    assert [p.name for p in (killed / "tiny").iterdir() if not p.is_symlink()] == [run_dir.name]
    resumed = {c["name"]: c for c in json.loads((run_dir / "results.json").read_text())["candidates"]}
    assert resumed["tiny-mnrl"].get("resumed_from") and not resumed["tiny-sym"].get("resumed_from")

    # the same suite, seed and device, uninterrupted in another process: the same numbers
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "straight"), "--device", "cpu", "-q")
    assert code == 0, text
    straight = {
        c["name"]: c
        for c in json.loads((tmp_path / "straight" / "tiny" / "latest" / "results.json").read_text())[
            "candidates"
        ]
    }
    assert set(straight) == set(resumed)
    for name in straight:
        a, b = _quality(straight[name]), _quality(resumed[name])
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-6 for k in a), name
        assert straight[name]["status"] == resumed[name]["status"] == "passed"


def test_resume_redoes_a_step_whose_settings_changed(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite()
    out = tmp_path / "o"
    assert run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q")[0] == 0
    suite.write_text(suite.read_text().replace("learning_rate = 1e-3", "learning_rate = 5e-4"))
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q", "--resume")
    assert code == 0, text
    # the baseline does not depend on training settings; the candidate does
    assert text.count("re-used (--resume)") == 1 and "trained on " in text


FAULTY_PLUGIN = """
import torch

from harness import hookimpl
from harness.api import Evaluator, LossSpec, PairSource


class Crashing(PairSource):
    name = "crashing"
    description = "a pair source with a bug"

    def load(self, options, ctx):
        raise RuntimeError("the plugin has a bug")


class CrashingEvaluator(Evaluator):
    name = "crashing-eval"

    def metric_names(self, k_values):
        return ["x"]

    def evaluate(self, encoder, corpus, split, k_values):
        raise ValueError("evaluator bug")


def out_of_memory(model):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@hookimpl
def harness_register_pair_sources(register):
    register(Crashing())


@hookimpl
def harness_register_evaluators(register):
    register(CrashingEvaluator())


@hookimpl
def harness_register_losses(register):
    register(LossSpec(name="OomLoss", factory=out_of_memory))
"""


def test_out_of_memory_in_one_candidate_errors_with_a_hint_and_the_others_run(tiny_suite, run_cli, tmp_path):
    plugin = tmp_path / "faulty.py"
    plugin.write_text(FAULTY_PLUGIN)
    suite = tiny_suite('[[losses]]\nname = "oom"\ntype = "OomLoss"\n', plugins=(plugin,))
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 1, text
    doc = json.loads(next((tmp_path / "o").glob("tiny/*/results.json")).read_text())
    by = {c["name"]: c for c in doc["candidates"]}
    assert by["tiny-oom"]["status"] == "error" and "out of memory" in by["tiny-oom"]["error"]
    assert (
        "CachedMultipleNegativesRankingLoss" in by["tiny-oom"]["error"]
        and "batch_size" in by["tiny-oom"]["error"]
    )
    assert by["tiny-mnrl"]["status"] == "passed" and by["tiny-baseline"]["status"] == "passed"


def test_a_crashing_pair_source_errors_its_suite_and_other_suites_run(tiny_suite, run_cli, tmp_path):
    plugin = tmp_path / "faulty.py"
    plugin.write_text(FAULTY_PLUGIN)
    good = tiny_suite(name="good.toml")
    bad = tiny_suite(name="bad.toml", data='source = "crashing"', plugins=(plugin,))
    code, text = run_cli("run", str(good), str(bad), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 1, text
    bad_doc = json.loads(next((tmp_path / "o").glob("bad/*/results.json")).read_text())
    assert {c["status"] for c in bad_doc["candidates"]} == {"error"}
    assert (
        "pair source 'crashing'" in bad_doc["candidates"][0]["error"]
        and "faulty" in bad_doc["candidates"][0]["error"]
    )
    good_doc = json.loads(next((tmp_path / "o").glob("good/*/results.json")).read_text())
    assert {c["status"] for c in good_doc["candidates"]} == {"passed"}


def test_a_crashing_evaluator_errors_the_candidate_with_the_plugin_named(tiny_suite, run_cli, tmp_path):
    plugin = tmp_path / "faulty.py"
    plugin.write_text(FAULTY_PLUGIN)
    suite = tiny_suite(plugins=(plugin,))
    suite.write_text(
        suite.read_text().replace(
            "[evaluation]\n", '[evaluation]\nevaluators = ["retrieval", "crashing-eval"]\n'
        )
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 1, text
    doc = json.loads(next((tmp_path / "o").glob("tiny/*/results.json")).read_text())
    errors = [c["error"] for c in doc["candidates"]]
    assert all("evaluator 'crashing-eval'" in e and "faulty" in e and "evaluator bug" in e for e in errors), (
        errors
    )
    assert (next((tmp_path / "o").glob("tiny/*")) / "report.html").is_file()


def test_sigterm_stops_at_once_writes_results_and_report_and_exits_2(tiny_suite, tmp_path):
    suite = tiny_suite()
    suite.write_text(suite.read_text().replace("epochs = 2", "epochs = 500"))
    out = tmp_path / "o"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "HARNESS_CACHE_DIR": str(tmp_path / "c"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(suite), "--out", str(out), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    seen = ""
    for line in proc.stdout:
        seen += line
        if line.startswith("    epoch 1:") and "tiny-mnrl ... training" in seen:
            sent = time.time()  # training is under way: its first epoch is done
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, seen + rest
    assert time.time() - sent < 60  # at once, not after 500 epochs
    run_dir = next(out.glob("tiny/2*"))
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["exit_code"] == 2 and (run_dir / "report.html").is_file()
    by = {c["name"]: c for c in doc["candidates"]}
    assert by["tiny-baseline"]["status"] == "passed" and by["tiny-mnrl"]["error"] == "interrupted"


def test_an_export_failing_its_fidelity_check_errors_that_candidate_or_that_variant(
    tiny_suite, run_cli, tmp_path
):
    strict = 'variants = ["fp32", "int8"]\nmin_cosine_reduced = 0.9999999\n'
    # the shipped variant fails: the candidate errors; the baseline (fp32 only) and the run go on
    suite = tiny_suite(export=strict + 'ship = "int8"\n')
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "a"), "--device", "cpu", "-q")
    assert code == 1, text
    by = {
        c["name"]: c
        for c in json.loads(next((tmp_path / "a").glob("tiny/*/results.json")).read_text())["candidates"]
    }
    assert by["tiny-baseline"]["status"] == "passed"
    assert (
        by["tiny-mnrl"]["status"] == "error"
        and "the ONNX int8 variant differs from the torch model" in by["tiny-mnrl"]["error"]
    )
    # a variant that is not shipped fails: its row says so, the candidate ships fp32 and passes
    suite = tiny_suite(export=strict + 'ship = "fp32"\n', name="tiny2.toml")
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "b"), "--device", "cpu", "-q")
    assert code == 0, text
    cand = next(
        c
        for c in json.loads(next((tmp_path / "b").glob("tiny2/*/results.json")).read_text())["candidates"]
        if c["name"] == "tiny-mnrl"
    )
    rows = {v["variant"]: v for v in cand["variants"]}
    assert (
        cand["status"] == "passed"
        and rows["fp32"]["shipped"]
        and "differs from the torch model" in rows["int8"]["error"]
    )
    assert "variant int8" in text


def test_a_report_that_fails_to_render_loses_no_result(tiny_suite, run_cli, tmp_path, monkeypatch):
    """A bug in the report (here: injected) exits 3, but results.json is complete and ``latest`` points
    at it, so ``harness report <suite>/latest`` renders it once the bug is fixed."""
    import harness.report.html

    real = harness.report.html.write_report

    def broken(run_dir):
        raise RuntimeError("template bug")

    monkeypatch.setattr(harness.report.html, "write_report", broken)
    out = tmp_path / "o"
    code, text = run_cli("run", str(tiny_suite()), "--out", str(out), "--device", "cpu", "-q")
    assert code == 3 and "template bug" in text and "INTERNAL ERROR" in text
    latest = out / "tiny" / "latest"
    doc = json.loads((latest / "results.json").read_text())
    assert doc["exit_code"] == 0 and {c["status"] for c in doc["candidates"]} == {"passed"}
    assert not (latest / "report.html").exists()
    monkeypatch.setattr(harness.report.html, "write_report", real)
    code, text = run_cli("report", str(latest))
    assert code == 0 and (latest / "report.html").is_file()
