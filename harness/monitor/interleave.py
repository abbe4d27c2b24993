"""Interleaving: two releases' rankings merged into one result list, and the clicks on it credited to
the run that placed each document.

* **Team draft** (Radlinski, Kurup and Joachims 2008, the default): the runs take turns as two
  captains picking teams (a coin decides who picks first whenever the teams are even); each picks
  its highest document not yet in the list.
* **Balanced** (Joachims 2002): the list is the runs read in step, one of them (by a coin) a step
  ahead, each document placed by the run whose turn reached it first.

``harness ab --interleaved`` credits each impression to the run whose positions got more clicks
(a balanced list is credited by its teams as well), and the preference for RUN_A is the mean of
+1 (A won), -1 (B won) and 0 (a tie or no click) over the
impressions (each one a paired comparison of the two runs on one query, the queries drawn as the
traffic draws them); its interval is the report's bootstrap against no preference.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from harness.data.impressions import Impression
from harness.errors import DataError

METHODS = ("team-draft", "balanced")


def read_run(path: Path) -> dict[str, list[str]]:
    """``{query: [doc ids, best first]}`` of a TREC run (``qid Q0 doc rank score tag``) or JSONL
    (``query`` and ``ranking``, or ``query_id`` and ``results`` as `harness search --jsonl` writes)."""
    from harness.core.files import json_lines, text_lines

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a run: TREC or JSONL)")
    runs: dict[str, list[tuple[float, str]]] = defaultdict(list)
    if path.suffix.lower() in (".jsonl", ".json"):
        out = {}
        for n, obj in json_lines(path):
            q = obj.get("query", obj.get("query_id"))
            ranking = obj.get("ranking", obj.get("results"))
            if q in (None, "") or not isinstance(ranking, list):
                raise DataError(f"{path}:{n}: expected 'query' and 'ranking' (a list of document ids)")
            ids = [r.get("id") if isinstance(r, dict) else r for r in ranking]
            if not all(isinstance(i, (str, int)) and str(i) for i in ids):
                raise DataError(f"{path}:{n}: 'ranking' must be a list of document ids")
            if str(q) in out:
                raise DataError(f"{path}:{n}: query {q!r} again")
            out[str(q)] = [str(i) for i in ids]
    else:
        for n, line in text_lines(path):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataError(f"{path}:{n}: expected a TREC run line 'qid Q0 doc rank score tag'")
            try:
                rank = float(parts[3])
            except ValueError:
                raise DataError(f"{path}:{n}: the rank {parts[3]!r} is not a number") from None
            runs[parts[0]].append((rank, parts[2]))
        out = {q: [d for _, d in sorted(v)] for q, v in runs.items()}
    if not out:
        raise DataError(f"{path}: no rankings")
    return out


def team_draft(a: list[str], b: list[str], length: int, rng: random.Random) -> tuple[list[str], list[int]]:
    """The merged list and each position's team (0 = a, 1 = b)."""
    shown: list[str] = []
    teams: list[int] = []
    seen: set[str] = set()
    count = [0, 0]
    lists = (a, b)
    pos = [0, 0]

    def next_of(t: int) -> str | None:
        while pos[t] < len(lists[t]) and lists[t][pos[t]] in seen:
            pos[t] += 1
        return lists[t][pos[t]] if pos[t] < len(lists[t]) else None

    while len(shown) < length:
        left = [next_of(0), next_of(1)]
        if left[0] is None and left[1] is None:
            break
        if left[0] is None or left[1] is None:  # one run is used up: the other fills the list
            t = 0 if left[1] is None else 1
        elif count[0] != count[1]:
            t = 0 if count[0] < count[1] else 1
        else:
            t = rng.randrange(2)
        shown.append(left[t])
        seen.add(left[t])
        teams.append(t)
        count[t] += 1
    return shown, teams


def balanced(a: list[str], b: list[str], length: int, rng: random.Random) -> tuple[list[str], list[int]]:
    shown: list[str] = []
    teams: list[int] = []
    seen: set[str] = set()
    first = rng.randrange(2)
    k = [0, 0]
    lists = (a, b)
    while len(shown) < length and (k[0] < len(a) or k[1] < len(b)):
        if k[0] >= len(a):
            t = 1
        elif k[1] >= len(b):
            t = 0
        else:
            t = first if k[0] == k[1] else (0 if k[0] < k[1] else 1)
        d = lists[t][k[t]]
        k[t] += 1
        if d not in seen:
            shown.append(d)
            seen.add(d)
            teams.append(t)
    return shown, teams


def interleave(
    run_a: dict[str, list[str]],
    run_b: dict[str, list[str]],
    names: tuple[str, str],
    method: str = "team-draft",
    repeat: int = 1,
    seed: int = 0,
    length: int = 10,
) -> list[dict]:
    """One impression record per query (and repeat) both runs rank: ``query``, ``shown``, ``teams``
    (each position's run name), ``runs`` and ``method``."""
    if method not in METHODS:
        raise DataError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    merge = team_draft if method == "team-draft" else balanced
    rng = random.Random(seed)
    out = []
    for q in sorted(set(run_a) & set(run_b)):
        for _ in range(repeat):
            shown, teams = merge(run_a[q], run_b[q], length, rng)
            out.append(
                {
                    "query": q,
                    "shown": shown,
                    "teams": [names[t] for t in teams],
                    "runs": list(names),
                    "method": method,
                }
            )
    return out


def credit(imp: Impression, a: str, b: str) -> int:
    """+1 when run ``a``'s positions got more clicks, -1 when ``b``'s did, 0 otherwise."""
    clicked = set(imp.clicked)
    won = {a: 0, b: 0}
    for d, t in zip(imp.shown, imp.teams or ()):
        if d in clicked and t in won:
            won[t] += 1
    return (won[a] > won[b]) - (won[a] < won[b])


def analyse_interleaved(
    impressions: list[Impression], runs: tuple[str, str] | None = None, seed: int = 0
) -> dict:
    """``{runs, impressions, wins, losses, ties, comparisons}``: the preference for the first run."""
    import numpy as np

    from harness.gate.stats import paired_comparison
    from harness.monitor.abtest import impressions_needed

    names = sorted({t for imp in impressions for t in (imp.teams or ())})
    if runs is None and impressions[0].runs:
        runs = (impressions[0].runs[0], impressions[0].runs[1])
    if runs is None:
        if len(names) != 2:
            raise DataError(
                f"{impressions[0].where.rsplit(':', 1)[0]}: an interleaved log names two runs in 'teams'; "
                f"this one names {names}"
            )
        runs = (names[0], names[1])
    for imp in impressions:
        stray = set(imp.teams or ()) - set(runs)
        if stray:
            raise DataError(f"{imp.where}: team {sorted(stray)[0]!r} is not one of the runs {list(runs)}")
    a, b = runs
    outcomes = [credit(imp, a, b) for imp in impressions]
    queries = len({imp.query for imp in impressions})
    comp = paired_comparison([float(o) for o in outcomes], [0.0] * len(outcomes), seed=seed)
    var = float(np.var(outcomes, ddof=1)) if len(outcomes) > 1 else 0.0
    return {
        "kind": "interleaved",
        "runs": [a, b],
        "impressions": len(outcomes),
        "queries": queries,
        "wins": outcomes.count(1),
        "losses": outcomes.count(-1),
        "ties": outcomes.count(0),
        "comparisons": [
            {
                "arm": a,
                "against": b,
                "metric": "preference",
                "gain": round(comp["gain"], 6),
                "ci_low": round(comp["ci_low"], 6),
                "ci_high": round(comp["ci_high"], 6),
                "p_value": round(comp["p_value"], 6),
                "verdict": comp["verdict"],
                "queries": queries,
                "impressions": len(outcomes),
                "impressions_needed": impressions_needed(comp["gain"], [var], one_sample=True),
            }
        ],
    }
