"""One training as a step ``--resume`` re-uses: train into a folder (here, or data-parallel over
several processes), record what it chose, mark it done; or find it done and re-use it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.core import records
from harness.core.names import Stage
from harness.core.suiterun import SuiteRun
from harness.suite.collect import Item

RECORD = ".harness-train.json"  #: a finished training's summary, beside its model


def fit_step(
    run: SuiteRun,
    item: Item,
    base: Path,
    out: Path,
    key: str,
    progress,
    spec,
    options: dict,
    columns: dict,
    cfg,
    device: str,
    plugin_specs: tuple[str, ...] = (),
    keep: bool = True,
    data=None,
) -> dict:
    """Train ``item`` from ``base`` into ``out``, or re-use ``out`` when a run with the same ``key``
    finished it. ``keep=False``: only the summary is kept (learning-curve points). ``data``: default
    the run's. ``plugin_specs``: the ``-p`` options, for the processes of a distributed training."""
    from harness.train.fit import fit

    data = data or run.data
    info_file = out / RECORD
    if records.is_done(out, key) and info_file.is_file():
        info = json.loads(info_file.read_text())
        progress(
            Stage.TRAINED,
            {"seconds": info["seconds"], "pairs": info["pairs"], "kept": info["chosen_by"], "resumed": True},
        )
        return info
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob("harness-train-*"):  # checkpoints of a killed run
        shutil.rmtree(stale, ignore_errors=True)
    processes = cfg.processes
    if processes > 1:
        from harness.train.distributed import train_distributed

        work = out.parent / "harness-train-ddp"
        spec_ = {
            "suite": run.suite,
            "training": cfg,
            "base": base,
            "loss_type": item.loss.type,
            "loss_options": options,
            "columns": columns,
            "data": data,
            "primary_metric": run.suite.evaluation.primary_metric,
            "device": device,
            "out": out,
            "query_prompt": item.model.query_prompt,
            "document_prompt": item.model.document_prompt,
            "work_dir": work,
            "plugin_specs": plugin_specs,
            "cwd": str(Path.cwd()),
        }
        try:
            info = train_distributed(spec_, processes, device, out.parent)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    else:
        info = fit(
            base,
            spec,
            options,
            data,
            cfg,
            run.suite.evaluation.primary_metric,
            device,
            out,
            item.model.query_prompt,
            item.model.document_prompt,
            progress=progress,
            columns=columns,
        ).as_dict()
    info_file.write_text(json.dumps(info))
    if not keep:
        drop_model(out)
    records.mark_done(out, key)
    progress(
        Stage.TRAINED,
        {
            "seconds": info["seconds"],
            "pairs": info["pairs"],
            "kept": info["chosen_by"],
            "processes": processes,
            "dev_score": info.get("dev_score"),
            "memory": info.get("memory"),
        },
    )
    return info


def drop_model(folder: Path) -> None:
    """Remove a finished training's model from ``folder``, keeping its record (what it chose) and
    its step key (recorded again, with only the files that are left)."""
    key = records.folder_key(folder)
    for f in folder.iterdir():
        if f.name in (records.MARK, RECORD):
            continue
        if f.is_dir():
            shutil.rmtree(f)
        else:
            f.unlink()
    if key:
        records.mark_done(folder, key)
