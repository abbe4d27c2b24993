"""report.html from results.json alone, so ``harness report RUN_DIR`` re-renders a run without
re-training. Tables are computed here; the template only lays them out (autoescaped)."""

from __future__ import annotations

import json
from pathlib import Path

SHOWN = ("ndcg@10", "recall@10", "mrr@10", "map@100", "recall@100")


def ranking(doc: dict) -> list[dict]:
    """Every candidate and baseline, best primary metric first, with gains over its baseline."""
    primary = doc["primary_metric"]
    base = {c["base_model"]: c["metrics"] for c in doc["candidates"] if c["baseline"]}
    rows = []
    for c in doc["candidates"]:
        b = base.get(c["base_model"], {})
        metrics = [primary] + [m for m in SHOWN if m != primary]
        cells = []
        for m in metrics:
            v = c["metrics"].get(m)
            gain = None if c["baseline"] or v is None or m not in b else v - b[m]
            cells.append({"metric": m, "value": v, "gain": gain})
        rows.append({**c, "cells": cells, "primary": c["metrics"].get(primary)})
    rows.sort(key=lambda r: (r["primary"] is None, -(r["primary"] or 0), r["name"]))
    return rows


def bar_chart(rows: list[dict], metric: str) -> dict:
    """Geometry of an inline SVG bar chart of the primary metric (no scripts, no network)."""
    vals = [r["primary"] for r in rows if r["primary"] is not None]
    top = max(vals, default=1.0) or 1.0
    bars = [{"name": r["name"], "value": r["primary"], "baseline": r["baseline"], "status": r["status"],
             "y": 10 + i * 26, "width": round(360 * (r["primary"] / top), 1)}
            for i, r in enumerate(r for r in rows if r["primary"] is not None)]
    return {"metric": metric, "bars": bars, "height": 20 + 26 * len(bars)}


def write_report(run_dir: Path) -> Path:
    import jinja2

    doc = json.loads((run_dir / "results.json").read_text())
    env = jinja2.Environment(loader=jinja2.PackageLoader("harness", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    rows = ranking(doc)
    html = env.get_template("report.html.j2").render(
        doc=doc, rows=rows, chart=bar_chart(rows, doc["primary_metric"]),
        metrics=[doc["primary_metric"]] + [m for m in SHOWN if m != doc["primary_metric"]],
    )
    out = run_dir / "report.html"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
