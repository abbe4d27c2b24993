"""Simulated traffic before a test goes live: a cascade click model over a test split's judgements.

The simulated user reads a result list from the top. A document of relevance level ``l`` is clicked
with probability ``click[l]``; after a click the user stops with probability ``stop[l]``, else reads
on. Judged grades are mapped to three levels (0 not relevant, 1, 2 the highest grade of the
judgements: binary judgements are 0 and 2), unjudged documents are level 0. The presets are those of
Chuklin, Markov and de Rijke (2015, *Click Models for Web Search*, the cascade models used in
interleaving studies):

=============  ==================  =================
preset         click (0, 1, 2)     stop (0, 1, 2)
=============  ==================  =================
perfect        0.0, 0.5, 1.0       0.0, 0.0, 0.0
navigational   0.05, 0.5, 0.95     0.2, 0.5, 0.9
informational  0.4, 0.7, 0.9       0.1, 0.3, 0.5
=============  ==================  =================

Each impression draws a judged query (one with a relevant document) uniformly; an A/B split gives
it to one arm at random (half each), an interleaved test shows both runs merged.
"""

from __future__ import annotations

import random

from harness.data.impressions import Impression
from harness.errors import DataError

PRESETS = {
    "perfect": ((0.0, 0.5, 1.0), (0.0, 0.0, 0.0)),
    "navigational": ((0.05, 0.5, 0.95), (0.2, 0.5, 0.9)),
    "informational": ((0.4, 0.7, 0.9), (0.1, 0.3, 0.5)),
}


def levels(qrels: list[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """``{query: {doc: level 0-2}}`` of judgements of any grade scale."""
    top = max((g for _, _, g in qrels), default=1) or 1
    out: dict[str, dict[str, int]] = {}
    for q, d, g in qrels:
        out.setdefault(q, {})[d] = 0 if g <= 0 else max(1, min(2, round(2 * g / top)))
    return out


def cascade_clicks(shown, rel: dict[str, int], model: str, rng: random.Random) -> list[str]:
    click, stop = PRESETS[model]
    out = []
    for d in shown:
        level = rel.get(d, 0)
        if rng.random() < click[level]:
            out.append(d)
            if rng.random() < stop[level]:
                break
    return out


def judged_queries(qrels, *runs) -> list[str]:
    rel = levels(qrels)
    queries = sorted(
        q for q, docs in rel.items() if any(v > 0 for v in docs.values()) and all(q in r for r in runs)
    )
    if not queries:
        raise DataError(
            "the runs and the judgements share no judged query: were they made for the same split?"
        )
    return queries


def simulate_ab(
    runs: dict[str, dict[str, list[str]]],
    qrels,
    impressions: int,
    model: str = "navigational",
    seed: int = 0,
    depth: int = 10,
) -> list[Impression]:
    """``impressions`` impressions split at random between the arms ``runs`` (name -> run)."""
    rel = levels(qrels)
    names = list(runs)
    queries = judged_queries(qrels, *runs.values())
    rng = random.Random(seed)
    out = []
    for n in range(impressions):
        q, arm = rng.choice(queries), rng.choice(names)
        shown = runs[arm][q][:depth]
        out.append(
            Impression(
                q,
                tuple(shown),
                tuple(cascade_clicks(shown, rel[q], model, rng)),
                arm,
                where=f"simulated:{n + 1}",
            )
        )
    return out


def simulate_interleaved(
    run_a: dict[str, list[str]],
    run_b: dict[str, list[str]],
    names: tuple[str, str],
    qrels,
    impressions: int,
    model: str = "navigational",
    method: str = "team-draft",
    seed: int = 0,
    depth: int = 10,
) -> list[Impression]:
    """``impressions`` interleaved lists of the two runs, each with its clicks and teams."""
    from harness.monitor.interleave import balanced, team_draft

    merge = team_draft if method == "team-draft" else balanced
    rel = levels(qrels)
    queries = judged_queries(qrels, run_a, run_b)
    rng = random.Random(seed)
    out = []
    for n in range(impressions):
        q = rng.choice(queries)
        shown, teams = merge(run_a[q], run_b[q], depth, rng)
        out.append(
            Impression(
                q,
                tuple(shown),
                tuple(cascade_clicks(shown, rel[q], model, rng)),
                teams=tuple(names[t] for t in teams),
                runs=names,
                where=f"simulated:{n + 1}",
            )
        )
    return out


def impression_record(imp: Impression) -> dict:
    """An impression as a log line (`harness ab` reads it back)."""
    rec = {"query": imp.query, "shown": list(imp.shown), "clicked": list(imp.clicked)}
    if imp.arm is not None:
        rec["arm"] = imp.arm
    if imp.teams is not None:
        rec["teams"] = list(imp.teams)
        rec["runs"] = list(imp.runs or ())
    return rec
