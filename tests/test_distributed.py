"""``[training] processes = 2``: one candidate trained data-parallel by torchrun (DDP; gloo on the
CPU), through the same path a multi-GPU machine takes with NCCL."""

from __future__ import annotations

import json

import pytest


def test_two_process_ddp_training_on_the_cpu(tmp_path, tiny_suite, run_cli):
    suite = tiny_suite(name="ddp.toml")
    suite.write_text(suite.read_text().replace("[training]\n", "[training]\nprocesses = 2\n", 1))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "r"), "--device", "cpu", "-q")
    assert code == 0, out
    doc = json.loads((tmp_path / "r" / "ddp" / "latest" / "results.json").read_text())
    cand = next(c for c in doc["candidates"] if not c["baseline"])
    assert cand["training"]["processes"] == 2
    # each process trains on its share of the pairs: fewer optimizer steps than one process would take
    assert cand["training"]["steps"] < 2 * -(-cand["training"]["pairs"] // 16)
    assert cand["metrics"]["ndcg@10"] > 0
    assert not list((tmp_path / "r" / "ddp" / "latest" / "models" / "tiny-mnrl").glob("*ddp*"))  # cleaned up


@pytest.mark.gpu
def test_ddp_on_two_gpus(tmp_path, tiny_suite, run_cli):
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices")
    suite = tiny_suite(name="ddp2.toml")
    suite.write_text(suite.read_text().replace("[training]\n", "[training]\nprocesses = 2\n", 1))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "r"), "--device", "cuda", "-q")
    assert code == 0, out
