"""The report's after-shipping section: the ``harness ab`` and ``harness drift`` outputs given to
``harness report RUN --ab FILE --drift FILE`` are kept in ``RUN/monitor/`` (so every later
re-render shows them too) and shown as tables: arms, comparisons with intervals and the impressions
each needs; drift checks against their thresholds, and the queries least like training."""

from __future__ import annotations

import json
from pathlib import Path

from harness.core.jsondoc import load_json
from harness.core.records import write_atomic
from harness.errors import ConfigError, Problem

FOLDER = "monitor"
TITLES = {
    "ab": "A/B test",
    "interleaved": "Interleaved test",
    "simulation": "Simulated traffic (before going live)",
    "drift": "Drift",
}
ARM_METRICS = ("ctr", "mrr", "clicks@10", "abandonment")
CHECK_MEANING = {  #: what each drift check's value is (harness/monitor/drift.py)
    "new_terms": "share of words unseen in training, above the test queries' own share",
    "query_embeddings": "held-out ROC AUC of a classifier telling production from training queries",
    "document_embeddings": "held-out ROC AUC of a classifier telling new from indexed documents",
    "top1_similarity": "fall of the mean top-1 cosine from the test queries'",
}


def attach(run_dir: Path, outputs: list[tuple[str, Path, dict]]) -> list[Path]:
    """Keep each ``(command, source file, checked document)`` as ``RUN/monitor/<command>-<stem>.json``
    (a file of the same name is replaced: attach a newer week's output under the same name)."""
    folder = Path(run_dir) / FOLDER
    folder.mkdir(exist_ok=True)
    written: list[Path] = []
    for command, source, doc in outputs:
        out = folder / f"{command}-{Path(source).stem}.json"
        n = 2
        while out in written:  # two files of one name in one call: keep both
            out = folder / f"{command}-{Path(source).stem}-{n}.json"
            n += 1
        write_atomic(out, json.dumps(doc, indent=1))
        written.append(out)
    return written


def _comparison(c: dict) -> dict:
    need = c.get("impressions_needed")
    return {**c, "needed": "–" if need is None else f"{need:,}"}


def _ab_view(doc: dict) -> dict:
    view = {
        "decision": doc["decision"],
        "arms": [
            {"name": name, **arm, "control": name == doc.get("control")}
            for name, arm in sorted((doc.get("arms") or {}).items())
        ],
        "comparisons": [_comparison(c) for c in doc["comparisons"]],
        "click_model": doc.get("click_model"),
    }
    il = doc.get("interleaved") or (doc if doc["kind"] == "interleaved" else None)
    if il:
        view["interleaved"] = {
            k: il.get(k) for k in ("runs", "impressions", "queries", "wins", "losses", "ties")
        }
    return view


def _drift_view(doc: dict) -> dict:
    return {
        "verdict": doc["verdict"],
        "queries": doc["queries"],
        "distinct": doc["distinct_queries"],
        "checks": doc["checks"],
        "examples": doc["examples"][:10],
        "artifact": doc["artifact"],
    }


def section(run_dir: Path) -> list[dict]:
    """One entry per kept output, in file-name order: ``file``, ``kind``, ``title`` and the view."""
    folder = Path(run_dir) / FOLDER
    out = []
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = load_json(file)
        try:
            kind = doc["kind"]
            view = _drift_view(doc) if kind == "drift" else _ab_view(doc)
        except (LookupError, TypeError, AttributeError) as e:
            raise ConfigError(
                Problem(
                    str(file),
                    "",
                    f"not an output of `harness ab` or `harness drift` ({type(e).__name__}: {e})",
                )
            ) from None
        out.append({"file": f"{FOLDER}/{file.name}", "kind": kind, "title": TITLES[kind], **view})
    return out
