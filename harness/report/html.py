"""report.html from results.json alone, so ``harness report RUN_DIR`` re-renders a run without
re-training. Tables and plots are computed here; the template only lays them out (autoescaped)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.core.metrics import MEASURED, reported
from harness.gate.compare import shipped
from harness.gate.gates import describe
from harness.report import monitoring, plots
from harness.report.document import read_results
from harness.train.selection import refit_phrase

MARKS = {
    "better": "▲ significantly better",
    "worse": "▼ significantly worse",
    "not distinguishable": "≈ not distinguishable",
}


def columns(doc: dict) -> list[str]:
    """The metrics the report tabulates: the primary and reported ones, then every other metric a
    threshold gates on (a domain evaluator's, such as ``equivalent@1``)."""
    out = reported(doc["primary_metric"])
    gated = {g["metric"] for c in doc["candidates"] for g in c.get("gates", [])}
    return out + sorted(gated - set(out) - set(MEASURED))


def ranking(doc: dict) -> list[dict]:
    """Every candidate and baseline, best primary metric first, with gains, intervals and p-values."""
    primary = doc["primary_metric"]
    base = {c["base_model"]: c["metrics"] for c in doc["candidates"] if c["baseline"]}
    metrics = columns(doc)
    rows = []
    for c in doc["candidates"]:
        comp = c.get("comparison", {}).get("baseline", {})
        b = base.get(c["base_model"], {})
        cells = []
        for m in metrics:
            s = comp.get(m)
            cells.append(
                {
                    "metric": m,
                    "value": c["metrics"].get(m),
                    "gain": s["gain"] if s else None,
                    "ci": (s["ci_low"], s["ci_high"]) if s else None,
                    "p": s["p_value"] if s else None,
                    "verdict": s["verdict"] if s else None,
                }
            )
        top = comp.get(primary)
        rows.append(
            {
                **c,
                **({"base_model": fusion_text(c)} if c.get("hybrid_of") else {}),
                "cells": cells,
                "primary": c["metrics"].get(primary),
                "verdict": top["verdict"] if top else None,
                "mark": MARKS.get(top["verdict"]) if top else None,
                "interval": (b[primary] + top["ci_low"], b[primary] + top["ci_high"])
                if top and b.get(primary) is not None
                else None,
                "outcomes": top,
                "gate_lines": [(g["passed"], describe(g)) for g in c.get("gates", [])],
            }
        )
    rows.sort(key=lambda r: (r["primary"] is None, -(r["primary"] or 0), r["name"]))
    return rows


def fusion_text(c: dict) -> str:
    """What a hybrid row is, in words: ``tiny-mnrl fused with bm25 (rrf k=20, chosen on dev ndcg@10)``."""
    f = c["fusion"]
    param = f"k={f['rrf_k']}" if f["method"] == "rrf" else f"dense weight {f['weight']}"
    of = c["hybrid_of"]
    return f"{of['dense']} fused with {of['of']} ({f['method']} {param}, {f['chosen_by']})"


def reference_rows(doc: dict) -> list[dict]:
    """The references as rows of the ranking: BM25, and the hybrid of each candidate and baseline."""
    primary, metrics = doc["primary_metric"], columns(doc)
    rows = []
    for r in doc.get("references") or []:
        if r["type"] == "hybrid" and r.get("candidate"):
            continue  # ranked as a candidate of its own
        if r["type"] == "hybrid":
            name, what = (
                f"{r['fuses']} + {r['name']}",
                f"{r['fuses']} fused with {r['of']} ({r.get('method') or r['settings'].get('method')})",
            )
        elif r["type"] == "bm25":
            name, what = r["name"], f"BM25 (bm25s: {', '.join(f'{k}={v}' for k, v in r['settings'].items())})"
        else:
            name, what = r["name"], f"{r['settings'].get('model')} (untuned)"
        rows.append(
            {
                "name": name,
                "base_model": what,
                "baseline": False,
                "reference": True,
                "status": "error" if r.get("error") else "reference",
                "cells": [{"metric": m, "value": r["metrics"].get(m), "gain": None} for m in metrics],
                "primary": r["metrics"].get(primary),
                "mark": None,
                "verdict": None,
                "gate_lines": [],
                "error": r.get("error"),
            }
        )
    return rows


def against_references(doc: dict) -> list[dict]:
    """Each candidate against each reference on the primary metric (gain, interval, p, verdict)."""
    primary, names = doc["primary_metric"], {r["name"] for r in doc.get("references") or []}
    out = []
    for c in doc["candidates"]:
        for ref, stats in (c.get("comparison") or {}).items():
            if ref in names and primary in stats:
                out.append(
                    {
                        "candidate": c["name"],
                        "reference": ref,
                        "value": c["metrics"].get(primary),
                        **stats[primary],
                    }
                )
    return out


def out_of_domain(doc: dict) -> list[dict]:
    """Per candidate and baseline, each out-of-domain split: the primary metric, and its change from
    the untuned baseline with the interval (did fine-tuning forget?)."""
    primary, out = doc["primary_metric"], []
    for c in doc["candidates"]:
        for name, o in (c.get("out_of_domain") or {}).items():
            s = (c.get("comparison") or {}).get("baseline", {}).get(f"{name}/{primary}")
            out.append(
                {
                    "candidate": c["name"],
                    "baseline": c["baseline"],
                    "set": name,
                    "queries": o.get("queries"),
                    "value": o["metrics"].get(primary),
                    "stats": s,
                }
            )
    return out


def selection(doc: dict) -> list[dict]:
    """Per candidate: the setting the dev split chose (and the grid it chose from), the refit, the
    seeds' spread and the learning curve."""
    primary = doc["primary_metric"]
    out = []
    for c in doc["candidates"]:
        t = c.get("training") or {}
        if c["baseline"] or not t:
            continue
        seeds = c.get("seeds")
        if seeds and primary in seeds["mean"]:
            seeds = {
                "mean": seeds["mean"][primary],
                "std": seeds["std"][primary],
                "worst": seeds["worst"][primary],
                "best": seeds["best"][primary],
                "shipped": seeds["shipped"],
                "runs": [
                    {"seed": r["seed"], "dev": r["dev_score"], "value": r["metrics"].get(primary)}
                    for r in seeds["runs"]
                ],
            }
        else:
            seeds = None
        refit = t.get("refit")
        by = t.get("chosen_by") or ""
        out.append(
            {
                "name": c["name"],
                "setting": t.get("setting") or {},
                "grid": t.get("grid") or t.get("search"),
                "search": t.get("search") is not None,
                "seeds": seeds,
                "epoch_by": by.removesuffix(refit_phrase(refit["epochs"])) if refit else by,
                "seed": t.get("seed"),
                "curve": t.get("learning_curve"),
                "epoch": t.get("chosen_epoch"),
                "refit": refit,
            }
        )
    # worth a section when something was chosen or measured beyond one plain training
    return out if any(s["grid"] or s["seeds"] or s["curve"] or s["refit"] for s in out) else []


def dims_table(doc: dict, rows: list[dict]) -> dict | None:
    """The primary metric at each truncated embedding size, for every model evaluated at them."""
    primary = doc["primary_metric"]
    with_dims = [r for r in rows if r.get("dims")]
    if not with_dims:
        return None
    sizes = sorted({int(d) for r in with_dims for d in r["dims"]}, reverse=True)
    return {
        "sizes": sizes,
        "rows": [
            {"name": r["name"], "scores": [(r["dims"].get(str(d)) or {}).get(primary) for d in sizes]}
            for r in with_dims
        ],
    }


def history(run_dir: Path, doc: dict) -> list[dict]:
    """The shipped candidate's primary metric in every kept run of this suite up to this one."""
    primary = doc["primary_metric"]
    points = []
    for other in sorted(p for p in run_dir.parent.iterdir() if p.is_dir() and not p.is_symlink()):
        if other.name > run_dir.name:
            continue
        try:  # a plain read: the full schema check costs ~0.3 s per SciFact run, once per earlier run
            d = doc if other == run_dir else json.loads((other / "results.json").read_text())
            ship = next((c for c in d["candidates"] if c["name"] == d.get("shipped")), None)
            ship = ship or shipped(d["candidates"], primary)
            points.append(
                {
                    "run_id": other.name,
                    "name": ship["name"] if ship else None,
                    "value": float(ship["metrics"][primary]) if ship else None,
                    "current": other == run_dir,
                    "exit_code": d.get("exit_code"),
                }
            )
        except (OSError, ValueError, LookupError, TypeError, AttributeError):
            continue  # a damaged or foreign run folder is left out of the history
    return points


def data_section(doc: dict) -> dict | None:
    """The report's Data section: how the split was made, the training columns, and what cleaning
    found (every finding, zero or not, so the reader sees what was checked). None for a run
    written before the cleaning existed."""
    data = doc.get("data") or {}
    cleaning = data.get("cleaning")
    if not cleaning:
        return None
    findings = [
        {
            "name": k.replace("_", " "),
            "count": v.get("count", 0),
            "action": v.get("action", ""),
            "means": v.get("means", ""),
            "examples": v.get("examples", []),
        }
        for k, v in cleaning.items()
        if k != "too_long" and isinstance(v, dict)
    ]
    columns = sorted(
        {
            (
                c["name"],
                ", ".join(c["training"]["columns"]),
                ", ".join(f"{k} {n}" for k, n in (c["training"].get("negatives") or {}).items() if n),
            )
            for c in doc.get("candidates", [])
            if (c.get("training") or {}).get("columns")
        }
    )
    return {
        "split": data.get("split") or {},
        "findings": findings,
        "too_long": cleaning.get("too_long") or [],
        "columns": [{"name": n, "columns": cols, "negatives": negs or "none"} for n, cols, negs in columns],
    }


def write_report(run_dir: Path) -> Path:
    import jinja2

    doc = read_results(run_dir)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["toml"] = json.dumps  # settings as a suite file spells them: true, "best_dev", [1, 2]
    rows = ranking(doc)
    primary = doc["primary_metric"]
    past = history(run_dir, doc)
    ranked = sorted(
        rows + reference_rows(doc), key=lambda r: (r["primary"] is None, -(r["primary"] or 0), r["name"])
    )
    figures = [  # the references stand among the candidates in the first plot, as in the ranking
        ("ndcg", f"{primary} with 95% intervals", plots.metric_with_ci(ranked, primary)),
        (
            "outcomes",
            "Per-query outcome against the baseline",
            plots.query_outcomes([r for r in rows if not r["baseline"]]),
        ),
        (
            "speed",
            "Quality against speed: every model, variant, hybrid and BM25 (pick what fits the budget)",
            plots.quality_vs_speed(rows, primary, doc.get("references") or []),
        ),
        ("training", f"Training loss and dev {primary} over steps", plots.training_curves(rows, primary)),
        ("history", f"Shipped candidate's {primary} across runs", plots.history(past, primary)),
    ]
    html = env.get_template("report.html.j2").render(
        doc=doc,
        rows=rows,
        figures=[f for f in figures if f[2]],
        history=past,
        ranked=ranked,
        against=against_references(doc),
        ood=out_of_domain(doc),
        metrics=columns(doc),
        views=[r for r in rows if r.get("per_query_view")],
        selection=selection(doc),
        mining=[r for r in rows if r.get("mining")],
        diagnosed=[c for c in doc["candidates"] if c.get("diagnosis")],
        dims=dims_table(doc, rows),
        data=data_section(doc),
        monitoring=monitoring.section(run_dir),
        plain_st={c["base_model"]: c["plain_st"] for c in doc["candidates"] if c.get("plain_st")},
        arm_metrics=monitoring.ARM_METRICS,
        check_meaning=monitoring.CHECK_MEANING,
    )
    out = run_dir / "report.html"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
