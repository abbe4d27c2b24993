"""Training one candidate on several GPUs: data-parallel (DDP) through the standard route.

With ``[training] processes = N`` (N > 1) the harness does not train in its own process: it writes
what the training needs to a file and runs ``torchrun --standalone --nproc_per_node N -m
harness.train.distributed FILE``. Every process runs the same sentence-transformers trainer, which
sees torchrun's ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` and wraps the model in
``DistributedDataParallel`` (NCCL on GPUs, gloo on the CPU): each process takes its share of every
batch on its own GPU (``cuda:LOCAL_RANK``), gradients are averaged, and process 0 saves the kept
model and writes the training summary. ``batch_size`` stays the per-process batch, as in
sentence-transformers; the effective batch is N times larger (note that in-batch negatives are per
process for MultipleNegativesRankingLoss unless its ``gather_across_devices`` option is set).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from harness.errors import CandidateError

SPEC = "ddp-spec.pkl"
RESULT = "ddp-result.json"


def train_distributed(spec: dict, processes: int, device: str, folder: Path) -> dict:
    """Run the training described by ``spec`` in ``processes`` torchrun processes; the summary
    (:meth:`harness.train.fit.TrainResult.as_dict`) that process 0 wrote."""
    if device == "cuda":
        import torch

        if torch.cuda.device_count() < processes:
            raise CandidateError(
                f"training.processes = {processes}, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULT).unlink(missing_ok=True)
    with (folder / SPEC).open("wb") as f:
        pickle.dump(spec, f)
    env = dict(os.environ)
    if device == "cpu":  # share the cores instead of each process taking all of them
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "harness.train.distributed",
        str(folder / SPEC),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    finally:
        (folder / SPEC).unlink(missing_ok=True)  # it holds a copy of the data
    if proc.returncode != 0 or not (folder / RESULT).is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise CandidateError(
            f"distributed training in {processes} processes failed (torchrun exit {proc.returncode}): {tail}"
        )
    info = json.loads((folder / RESULT).read_text())
    (folder / RESULT).unlink()
    return info


def main(argv: list[str]) -> int:
    """One torchrun process: rebuild the plugins (for the loss), train, and on rank 0 write the summary."""
    from harness.plugins import from_command_line
    from harness.train.fit import fit

    with open(argv[0], "rb") as f:
        spec = pickle.load(f)
    plugins = from_command_line(spec["plugin_specs"], Path(spec["cwd"]), quiet=True)
    plugins.load_suite_plugins(spec["suite"])
    tr = fit(
        spec["base"],
        plugins.registry.losses[spec["loss_type"]],
        spec["loss_options"],
        spec["data"],
        spec["training"],
        spec["primary_metric"],
        spec["device"],
        spec["out"],
        spec["query_prompt"],
        spec["document_prompt"],
        work_dir=spec["work_dir"],
        columns=spec["columns"],
    )
    if int(os.environ.get("RANK", "0")) == 0:
        info = {**tr.as_dict(), "processes": int(os.environ.get("WORLD_SIZE", "1"))}
        (Path(argv[0]).parent / RESULT).write_text(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
