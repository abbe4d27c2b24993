"""What a candidate is compared with, and the per-query evidence a domain expert reads.

* ``load_reference``: the model in production, from a previous run's ``results.json``
  (``--compare``): that run's shipped candidate, i.e. its best passing one.
* ``comparisons``: paired statistics of a candidate against each reference (:mod:`harness.gate.stats`).
* ``per_query_view``: the queries a candidate fixed and broke, with texts.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.names import Status
from harness.errors import ConfigError, Problem
from harness.gate.stats import compare_runs

SNIPPET = 400  #: characters of a document shown in the per-query view


def shipped(candidates: list[dict], primary: str, ship: str = "best") -> dict | None:
    """The row a run ships: with ``ship = "best"``, of the rows (not baselines) that pass their gates
    the best on dev (``dev``), when every one of them has a dev score, else the best on the primary
    metric; with a name, that row when it passed (else None)."""
    ok = [
        c
        for c in candidates
        if not c["baseline"] and c["status"] == Status.PASSED and primary in c["metrics"]
    ]
    if ship != "best":
        return next((c for c in ok if c["name"] == ship), None)

    def dev(c) -> float | None:
        d = c.get("dev") or {}
        return d.get(primary, d.get("score"))

    if ok and all(dev(c) is not None for c in ok):
        return max(ok, key=lambda c: (dev(c), c["metrics"][primary]))
    return max(ok, key=lambda c: c["metrics"][primary], default=None)


def load_reference(doc: dict, path: Path | str) -> dict:
    """``{suite, run_id, file, name, metrics, per_query}`` of the model shipped by the previous run
    whose results.json ``doc`` was read from ``path`` (see :func:`harness.report.document.read_results`)."""
    primary, cands = doc["primary_metric"], doc["candidates"]
    ref = (
        next((c for c in cands if c["name"] == doc.get("shipped")), None)
        or shipped(cands, primary)
        or max(
            (c for c in cands if not c["baseline"] and c["metrics"]),
            key=lambda c: c["metrics"].get(primary, 0),
            default=None,
        )
    )
    if ref is None or not ref.get("per_query"):
        raise ConfigError(
            Problem(str(path), "", "--compare: that run has no evaluated candidate to compare with")
        )
    return {
        "suite": doc["suite"],
        "run_id": doc.get("run_id"),
        "file": str(path),
        "name": ref["name"],
        "status": ref["status"],
        "metrics": ref["metrics"],
        "per_query": ref["per_query"],
    }


def comparisons(per_query: dict, references: dict[str, dict | None], metrics: list[str], seed: int) -> dict:
    """``{reference: {metric: paired statistics}}`` for every reference that has per-query values."""
    return {
        name: compare_runs(per_query, ref["per_query"], metrics, seed=seed)
        for name, ref in references.items()
        if ref and ref.get("per_query")
    }


def per_query_view(cand: dict, base: dict, metric: str, data, n: int = 10) -> dict:
    """The ``n`` queries the candidate improved most on ``metric`` over the baseline ("fixed") and the
    ``n`` it hurt most ("broken"): query text, relevant documents, and each model's top 3."""
    docs = dict(data.corpus.select("id", "text").iter_rows())
    queries = dict(data.test.queries.select("id", "text").iter_rows())
    relevant = data.test.relevant()
    deltas = []
    for q, vals in cand["per_query"].items():
        if q in base.get("per_query", {}) and metric in vals:
            deltas.append((vals[metric] - base["per_query"][q][metric], q))
    deltas.sort()

    def top(rankings: dict, q: str) -> list[dict]:
        return [
            {"id": d, "text": docs.get(d, "")[:SNIPPET], "relevant": d in relevant.get(q, {})}
            for d in rankings.get(q, [])[:3]
        ]

    def entry(delta: float, q: str) -> dict:
        return {
            "query_id": q,
            "query": queries.get(q, ""),
            "delta": round(delta, 4),
            "candidate": round(cand["per_query"][q][metric], 4),
            "baseline": round(base["per_query"][q][metric], 4),
            "relevant": [{"id": d, "text": docs.get(d, "")[:SNIPPET]} for d in list(relevant.get(q, {}))[:3]],
            "candidate_top": top(cand.get("rankings", {}), q),
            "baseline_top": top(base.get("rankings", {}), q),
        }

    return {
        "metric": metric,
        "fixed": [entry(d, q) for d, q in reversed(deltas[-n:]) if d > 0],
        "broken": [entry(d, q) for d, q in deltas[:n] if d < 0],
    }
