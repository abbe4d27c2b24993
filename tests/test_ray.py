"""``--executor ray``: a local Ray instance with 2 CPU workers runs a suite's candidates in worker
processes, with the same results and exit code as ``--executor local``; a worker that dies is that
candidate's error and the run goes on."""

from __future__ import annotations

import json
import os

import pytest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance with 2 CPU workers for the module; the harness joins it (and leaves it
    up) instead of starting its own for each run."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


LOSSES = """
[[losses]]
name = "sym"
type = "MultipleNegativesSymmetricRankingLoss"
[[thresholds]]
metric = "ndcg@10"
min_gain = 0.0
"""


def results(folder, suite="tiny") -> dict:
    return json.loads((folder / suite / "latest" / "results.json").read_text())


def test_ray_gives_the_local_results_from_worker_processes(tmp_path, tiny_suite, run_cli):
    suite = tiny_suite(LOSSES)
    local_code, local_out = run_cli(
        "run", str(suite), "--out", str(tmp_path / "local"), "--device", "cpu", "-q"
    )
    ray_code, ray_out = run_cli(
        "run", str(suite), "--out", str(tmp_path / "ray"), "--device", "cpu", "-q", "--executor", "ray"
    )
    assert ray_code == local_code, ray_out
    assert "executor ray (Ray " in ray_out and "2 CPU(s)" in ray_out, ray_out
    local, remote = results(tmp_path / "local"), results(tmp_path / "ray")
    assert [c["name"] for c in remote["candidates"]] == [c["name"] for c in local["candidates"]]
    assert len(remote["candidates"]) == 3  # the baseline and two candidates
    pids = set()
    for lc, rc in zip(local["candidates"], remote["candidates"]):
        assert rc["status"] == lc["status"], (rc.get("error"), ray_out)
        for m in ("ndcg@10", "recall@10", "mrr@10"):
            assert rc["metrics"][m] == pytest.approx(lc["metrics"][m], abs=2e-3), (rc["name"], m)
        assert [g["passed"] for g in rc["gates"]] == [g["passed"] for g in lc["gates"]]
        assert "worker" not in lc
        assert rc["worker"]["pid"] != os.getpid() and rc["worker"]["artifacts"] == "shared path"
        pids.add(rc["worker"]["pid"])
        # the artifacts are in the driver's run folder, where the report and release look for them
        assert (tmp_path / "ray" / "tiny" / "latest" / rc["variants"][0]["file"]).is_file()
    assert len(pids) >= 2  # two workers shared the three tasks
    assert remote["executor"]["kind"] == "ray" and local["executor"]["kind"] == "local"


def test_no_cache_reaches_the_workers(tmp_path, tiny_suite, run_cli):
    """An untuned baseline's evaluation is cached; ``--no-cache`` re-evaluates it on a Ray worker too
    (the worker runs with the run's options, not defaults)."""
    suite = tiny_suite(LOSSES)
    args = ("run", str(suite), "--device", "cpu", "-q", "--executor", "ray", "-k", "baseline")
    code, out = run_cli(*args, "--out", str(tmp_path / "first"))
    assert code == 0, out
    code, out = run_cli(*args, "--out", str(tmp_path / "cached"))
    (cached,) = results(tmp_path / "cached")["candidates"]
    assert code == 0 and cached["evaluation_cached_from"] is not None, out
    code, out = run_cli(*args, "--out", str(tmp_path / "fresh"), "--no-cache")
    (fresh,) = results(tmp_path / "fresh")["candidates"]
    assert code == 0 and fresh["evaluation_cached_from"] is None, out
    assert fresh["worker"]["pid"] != os.getpid()
    assert fresh["metrics"]["ndcg@10"] == pytest.approx(cached["metrics"]["ndcg@10"], abs=1e-6)


CRASH = """
import os
from harness import hookimpl
from harness.api import LossSpec

def crashing(model, **options):
    if os.getpid() != DRIVER_PID:
        os._exit(7)  # the Ray worker process dies mid-candidate
    raise RuntimeError("not in a worker")

@hookimpl
def harness_register_losses(register):
    register(LossSpec("CrashingLoss", crashing))
"""


def test_a_dying_worker_is_that_candidates_error(tmp_path, tiny_suite, run_cli, monkeypatch):
    """... and, without a shared run folder, artifacts come back through the object store."""
    (tmp_path / "crash.py").write_text(CRASH.replace("DRIVER_PID", str(os.getpid())))
    monkeypatch.setenv("HARNESS_RAY_ARTIFACTS", "object-store")
    suite = tiny_suite(
        '[[losses]]\nname = "crash"\ntype = "CrashingLoss"\n', plugins=(tmp_path / "crash.py",)
    )
    code, out = run_cli(
        "run", str(suite), "--out", str(tmp_path / "r"), "--device", "cpu", "-q", "--executor", "ray"
    )
    assert code == 1, out
    by = {c["name"]: c for c in results(tmp_path / "r")["candidates"]}
    assert by["tiny-baseline"]["status"] == "passed" and by["tiny-mnrl"]["status"] == "passed", out
    assert by["tiny-mnrl"]["worker"]["artifacts"] == "object store"
    assert (tmp_path / "r" / "tiny" / "latest" / by["tiny-mnrl"]["variants"][0]["file"]).is_file()
    assert (
        tmp_path / "r" / "tiny" / "latest" / "models" / "tiny-mnrl" / "trained" / "model.safetensors"
    ).is_file()
    assert by["tiny-crash"]["status"] == "error"
    assert "the Ray worker running it died" in by["tiny-crash"]["error"], by["tiny-crash"]["error"]
    assert "tiny::tiny-crash" in out and "error:" in out


SEARCH = """
[search]
trials = 3
sampler = "random"
learning_rate = [1e-4, 1e-3, 3e-3]
"""


def test_a_search_runs_its_trials_in_the_ray_worker_and_chooses_as_locally(tmp_path, tiny_suite, run_cli):
    suite = tiny_suite(SEARCH)
    for executor in ("local", "ray"):
        code, out = run_cli(
            "run", str(suite), "--out", str(tmp_path / executor), "--device", "cpu", "--executor", executor
        )
        assert code == 0, out
    local, remote = (
        next(c for c in results(tmp_path / x)["candidates"] if c["name"] == "tiny-mnrl")
        for x in ("local", "ray")
    )
    assert remote["worker"]["pid"] != os.getpid()
    a, b = local["training"]["search"], remote["training"]["search"]
    assert [t["setting"] for t in b["trials"]] == [t["setting"] for t in a["trials"]] and len(
        a["trials"]
    ) == 3
    assert [t["dev_score"] for t in b["trials"]] == pytest.approx(
        [t["dev_score"] for t in a["trials"]], abs=2e-3
    )
    assert b["chosen"] == a["chosen"] and remote["training"]["setting"] == a["chosen"]
