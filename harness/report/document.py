"""``results.json``: one suite's run as a :class:`harness.results.RunDocument`, written atomically
after every item (so an interruption or a crash loses nothing already computed) and, once the suite
is done, with its exit code, the ``latest`` link and ``report.html``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from harness import __version__
from harness.gate.compare import shipped
from harness.results import RunDocument

LIBRARIES = ("torch", "transformers", "sentence-transformers", "onnxruntime-gpu", "onnxruntime", "optimum",
             "optimum-onnx", "polars")


def environment() -> dict[str, str]:
    """The harness's version and those of the libraries that decide its numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"harness": __version__}
    for dist in LIBRARIES:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def run_document(run, code: int | None, device: str, executor: dict, started: float,
                 compare: dict | None) -> RunDocument:
    """The results.json of ``run`` (a :class:`harness.run.state.SuiteRun`); ``code``: its exit code,
    None while it goes on."""
    suite, data = run.suite, run.data
    results = list(run.results.values())
    return {
        "suite": suite.name, "suite_file": str(suite.path), "suite_sha256": suite.sha256,
        "description": suite.suite.description, "profile": suite.profile, "run_id": run.run_dir.name,
        "exit_code": None if code is None else int(code), "device": device, "executor": executor,
        "started": dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "finished": dt.datetime.now().isoformat(timespec="seconds") if code is not None else None,
        "primary_metric": suite.evaluation.primary_metric,
        "data": None if data is None else {"source": suite.data.source, "fingerprint": data.fingerprint,
                                           **data.stats(), "warnings": data.warnings},
        "training": dict(vars(suite.training)),
        "export": dict(vars(suite.export)),
        "data_seed": suite.data.seed,
        "environment": environment(),
        "candidates": results,
        "not_run": [i.name for i in run.items if i.name not in run.results],
        "shipped": (shipped(results, suite.evaluation.primary_metric) or {}).get("name"),
        "compare": None if not compare else {k: compare[k] for k in ("file", "run_id", "name", "metrics")},
    }


def write_results(run_dir: Path, doc: RunDocument) -> Path:
    """Write ``run_dir/results.json`` atomically; once the run is done (``exit_code`` set), point
    ``latest`` at it and render ``report.html``."""
    from harness.report.html import write_report

    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    tmp.replace(run_dir / "results.json")
    if doc["exit_code"] is not None:  # `latest` first: should the report fail, `harness report <suite>/latest` re-renders it
        latest = run_dir.parent / "latest"
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_dir.name)
        write_report(run_dir)
    return run_dir / "results.json"
