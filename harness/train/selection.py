"""Honest selection: what the dev split chooses (a grid's setting, the seed that ships), what seeds
say about spread, and what the learning curve says about more data. The test split never chooses."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.core.metrics import best as best_of_metric
from harness.core.metrics import worst


def best(dev_scores: list[float | None]) -> int:
    """The index of the best dev score (the first one on a tie; one without a score only if all lack one)."""
    return max(range(len(dev_scores)), key=lambda i: (dev_scores[i] is not None, dev_scores[i] or 0.0, -i))


def refit_phrase(epochs: int) -> str:
    """What a refit adds to ``training.chosen_by`` (the report shows the dev choice without it)."""
    return f"; then refit on train + dev for {epochs} epoch(s)"


def adopt(src: Path, dst: Path) -> bool:
    """Move a finished training from ``src`` to ``dst`` (the grid's winner becomes the first seed's)."""
    if not (src / ".harness-train.json").is_file():
        return False
    shutil.rmtree(dst, ignore_errors=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dst))
    return True


def mean_dims(runs: list[dict]) -> dict:
    """The metrics at each truncated size, averaged over seeds."""
    return {d: {m: round(sum(r[d][m] for r in runs) / len(runs), 6) for m in runs[0][d]} for d in runs[0]}


def mean_per_query(runs: list[dict]) -> dict:
    """Per query and metric, the mean over seeds (the queries and metrics every seed has)."""
    out = {}
    for q in runs[0]:
        if all(q in r for r in runs):
            metrics = set.intersection(*(set(r[q]) for r in runs))
            out[q] = {m: round(sum(r[q][m] for r in runs) / len(runs), 4) for m in sorted(metrics)}
    return out


def summarise(runs: list[dict], shipped_seed: int, primary: str, gated: set[str]) -> dict:
    """Mean, spread and worst of every test metric over the seeds, and each seed's own values (with
    per-query values of the gated metrics, for gates on the worst seed)."""
    import statistics

    metrics = [r["evaluated"]["metrics"] for r in runs]
    names = sorted(set.intersection(*(set(m) for m in metrics)))
    out = {
        "shipped": shipped_seed,
        "by": f"best dev {primary}",
        "mean": {},
        "std": {},
        "worst": {},
        "best": {},
        "runs": [],
    }
    for name in names:
        values = [m[name] for m in metrics]
        out["mean"][name] = round(statistics.fmean(values), 6)
        out["std"][name] = round(statistics.stdev(values), 6) if len(values) > 1 else 0.0
        out["worst"][name] = worst(name, values, key=float)
        out["best"][name] = best_of_metric(name, values, key=float)
    for r in runs:
        per_query = {
            q: {m: v for m, v in vals.items() if m in gated}
            for q, vals in r["evaluated"]["per_query"].items()
        }
        out["runs"].append(
            {
                "seed": r["seed"],
                "dev_score": r["training"]["dev_score"],
                "chosen_epoch": r["training"]["chosen_epoch"],
                "metrics": r["evaluated"]["metrics"],
                "per_query": per_query,
            }
        )
    return out


def curve_verdict(points: list[dict], primary: str) -> str:
    """One line on whether more training pairs would likely help, from the dev metric at each fraction."""
    pts = [p for p in points if p["dev_score"] is not None]
    if len(pts) < 2:
        return "no dev split: the learning curve needs one (data.dev_fraction > 0)"
    a, b = pts[-2], pts[-1]
    gain = b["dev_score"] - a["dev_score"]
    step = f"{a['fraction']:.0%} -> {b['fraction']:.0%} of the pairs: dev {primary} {gain:+.4f}"
    if gain > 0.005:
        return f"still rising ({step}): more training pairs would likely help"
    if gain < -0.005:
        return f"falling ({step}): the last pairs hurt; look at their quality"
    return f"flat ({step}): more pairs of the same kind would likely not help much"
