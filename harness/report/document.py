"""``results.json``: one suite's run as a :class:`harness.results.RunDocument`, written atomically
after every item (so an interruption or a crash loses nothing already computed) and, once the suite
is done, with its exit code and the ``latest`` link; and read back, checked against its schema."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from harness import __version__
from harness.core.names import Status
from harness.core.records import write_atomic
from harness.gate.compare import shipped
from harness.results import RunDocument

SCHEMA = Path(__file__).with_name("results.schema.json")  #: the one schema; docs link to it

LIBRARIES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "onnx",
    "onnxruntime-gpu",
    "onnxruntime",
    "openvino",
    "nncf",
    "polars",
)


def environment() -> dict:
    """The harness's version, those of the libraries that decide its numbers, and the CPU its speed
    figures were measured on."""
    from importlib.metadata import PackageNotFoundError, version

    from harness.core.machine import cpu_description
    from harness.export.onnx import exporter

    made = exporter()
    out = {
        "harness": __version__,
        "cpu": cpu_description(),
        "exporter": " + ".join((made["exporter"], made["optimizer"], made["quantizer"])),
    }
    for dist in LIBRARIES:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def run_document(
    run, code: int | None, device: str, executor: dict, started: float, compare: dict | None
) -> RunDocument:
    """The results.json of ``run`` (a :class:`harness.core.suiterun.SuiteRun`); ``code``: its exit code,
    None while it goes on."""
    suite, data = run.suite, run.data
    results = list(run.results.values())
    return {
        "suite": suite.name,
        "suite_file": str(suite.path),
        "suite_sha256": suite.sha256,
        "description": suite.suite.description,
        "profile": suite.profile,
        "overrides": list(suite.overrides),
        "run_id": run.run_dir.name,
        "exit_code": None if code is None else int(code),
        "device": device,
        "executor": executor,
        "started": dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "finished": dt.datetime.now().isoformat(timespec="seconds") if code is not None else None,
        "primary_metric": suite.evaluation.primary_metric,
        "data": None
        if data is None
        else {
            "source": suite.data.source,
            "fingerprint": data.fingerprint,
            **data.stats(),
            "warnings": data.warnings,
            "cleaning": data.cleaning,
            "split": data.split_info or {"method": f"given by the source ({suite.data.test_split!r})"},
        },
        "training": {
            **vars(suite.training),
            **({"max_seq_length_auto": run.max_seq_length_auto} if run.max_seq_length_auto else {}),
        },
        "export": dict(vars(suite.export)),
        "data_seed": suite.data.seed,
        "environment": environment(),
        "candidates": results,
        "not_run": [i.name for i in run.items if i.name not in run.results and i.name not in run.references],
        "shipped": (shipped(results, suite.evaluation.primary_metric, suite.suite.ship) or {}).get("name"),
        "compare": None if not compare else {k: compare[k] for k in ("file", "run_id", "name", "metrics")},
        "references": references_of(run),
    }


def references_of(run) -> list[dict]:
    """results.json ``references``: each bm25 reference of the suite, then each hybrid of every
    baseline and candidate (``fuses``: whose dense ranking it fused; ``fusion``: as chosen on dev;
    ``candidate``: the hybrid's own row among the candidates, harness/gate/hybrids.py). A bm25
    reference keeps its test rankings (the top 10 ids per query), as a candidate does."""
    out = [{k: v for k, v in r.items() if k != "per_query"} for r in run.references.values()]
    rows = {
        (c["hybrid_of"]["dense"], c["hybrid_of"]["reference"]): c["name"]
        for c in run.results.values()
        if c.get("hybrid_of")
    }
    for c in run.results.values():
        for name, h in (c.get("hybrid") or {}).items():
            out.append(
                {
                    "name": name,
                    "type": "hybrid",
                    "fuses": c["name"],
                    "of": h["of"],
                    "settings": h["settings"],
                    "method": h["method"],
                    "fusion": {k: v for k, v in (h.get("fusion") or {}).items() if k in FUSION_KEYS},
                    "candidate": rows.get((c["name"], name)),  # its row among the candidates
                    "metrics": h["metrics"],
                }
            )
    return out


FUSION_KEYS = ("method", "rrf_k", "depth", "weight", "chosen_by")  #: of a hybrid reference's entry


def write_results(run_dir: Path, doc: RunDocument) -> Path:
    """Write ``run_dir/results.json`` atomically; once the run is done (``exit_code`` set), point
    ``latest`` at it (then the session renders ``report.html``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "results.json", json.dumps(doc, indent=1, default=str))
    if doc["exit_code"] is not None:
        # `latest` first: should the report fail, `harness report <suite>/latest` re-renders it. It moves only
        # to a run that computed something: a run whose every item errored does not hide the last good one.
        if any(c.get("status") not in (Status.ERROR, Status.INTERRUPTED) for c in doc["candidates"]):
            point_latest(run_dir)
    return run_dir / "results.json"


def point_latest(run_dir: Path) -> None:
    """``<suite>/latest`` -> ``run_dir``, replaced atomically (a reader never finds it missing)."""
    import os
    import secrets

    tmp = run_dir.parent / f".latest.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.symlink_to(run_dir.name)
    tmp.replace(run_dir.parent / "latest")


def read_results(path: Path) -> RunDocument:
    """The results.json of run folder ``path`` (or the file itself), checked against its schema. A
    missing, truncated or damaged file raises ConfigError naming the file, where and what is wrong."""
    from harness.core.jsondoc import check_schema, load_json

    path = Path(path)
    file = path / "results.json" if path.is_dir() or not path.suffix else path
    doc = load_json(
        file, "no such file (expected the results.json of a run folder such as reports/<suite>/latest)"
    )
    if isinstance(doc, dict) and isinstance(doc.get("candidates"), list):
        doc = upgrade(doc)
    check_schema(doc, SCHEMA, file, "not a results.json the harness wrote, or a damaged one")
    return doc


def upgrade(doc: dict) -> dict:
    """Fill the keys that results.json files written by older versions lack, so that every run
    re-renders, and ``--compare``, ``--resume`` and the history read it."""
    for k, v in (
        ("shipped", None),
        ("compare", None),
        ("not_run", []),
        ("description", ""),
        ("profile", None),
        ("overrides", []),
        ("executor", {"kind": "local"}),
        ("export", {}),
        ("data_seed", 0),
        ("references", []),
    ):
        doc.setdefault(k, v)
    for c in doc["candidates"]:
        if isinstance(c, dict):
            for k, v in (
                ("gates", []),
                ("metrics", {}),
                ("timings", {}),
                ("encoder", None),
                ("base_model_revision", None),
                ("resolver", None),
            ):
                c.setdefault(k, v)
    return doc
