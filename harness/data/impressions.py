"""Impression logs: one row per result list shown, as ``harness ab`` reads them and the ``clicks``
source trains on them.

A row holds ``query`` (text or id), ``shown`` (the ranked document ids), ``clicked`` (the clicked ids,
each among those shown), and optionally ``arm``, ``session``, ``timestamp``, ``dwell`` (seconds per
clicked id, a list in the order of ``clicked``, or one number for all), ``teams`` (an interleaved
list's run per position, written by ``harness interleave``) and ``runs`` (its two runs, RUN_A
first). The files are read by the tables code (:func:`harness.data.tables.read_table`: JSONL, CSV,
TSV, JSON, Parquet); lists are JSON lists (a JSON list as text in CSV). Every problem is a
DataError naming the file and line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.data.tables import Table, list_cell, read_table, text_cell
from harness.errors import DataError

COLUMNS = ("query", "shown", "clicked")
OPTIONAL = ("arm", "session", "timestamp", "dwell", "teams", "runs")


@dataclass(frozen=True)
class Impression:
    """One result list shown: who saw what, and what they clicked (positions are 1-based)."""

    query: str
    shown: tuple[str, ...]
    clicked: tuple[str, ...]
    arm: str | None = None
    session: str | None = None
    timestamp: object = None
    dwell: tuple[float, ...] | None = None  #: per clicked id, in the order of ``clicked``
    teams: tuple[str, ...] | None = None  #: an interleaved list's run per position
    runs: tuple[str, ...] | None = None  #: an interleaved list's two runs, RUN_A first
    where: str = ""  #: file:line, for messages

    def click_ranks(self) -> list[int]:
        """The 1-based positions of the clicks, top first."""
        at = {d: i + 1 for i, d in reversed(list(enumerate(self.shown)))}
        return sorted(at[c] for c in self.clicked)


def read_impressions(path: Path, *, arm_from_stem: bool = True, need_teams: bool = False) -> list[Impression]:
    """Every impression of ``path`` (see :func:`impressions_of`)."""
    path = Path(path)
    table = read_table(path, "log of impressions (query, shown, clicked)")
    return impressions_of(table, path.stem if arm_from_stem else None, need_teams)


def impressions_of(
    table: Table, default_arm: str | None = None, need_teams: bool = False
) -> list[Impression]:
    """The :class:`Impression` of each row of a table already read. Without an ``arm`` column the arm is
    ``default_arm``. A missing column, an empty ``shown``, a clicked id not among those shown, a
    ``teams`` list of another length: DataError naming the file and line."""
    for c in COLUMNS + (("teams",) if need_teams else ()):
        if c not in table.columns:
            what = (
                "each position's run, as `harness interleave` writes it"
                if c == "teams"
                else "one row per impression"
            )
            raise DataError(
                f"{table.path}: no column {c!r} ({what}); the log has the columns {list(table.columns)}; "
                f"expected {', '.join(COLUMNS)} and optionally {', '.join(OPTIONAL)}"
            )
    return [_row(table, i, default_arm) for i in range(table.height)]


def _row(table: Table, i: int, default_arm: str | None) -> Impression:
    col = table.columns
    query = text_cell(table, i, "query", col["query"][i]).strip()
    shown = tuple(s.strip() for s in list_cell(table, i, "shown", col["shown"][i]))
    if not shown:
        raise DataError(f"{table.where(i)}: column 'shown' is empty (expected the ranked document ids shown)")
    clicked = tuple(s.strip() for s in list_cell(table, i, "clicked", col["clicked"][i]))
    unseen = [c for c in clicked if c not in shown]
    if unseen:
        raise DataError(
            f"{table.where(i)}: clicked id {unseen[0]!r} is not among the ids shown "
            f"({', '.join(shown[:5])}{' ...' if len(shown) > 5 else ''})"
        )
    if len(set(clicked)) != len(clicked):
        raise DataError(f"{table.where(i)}: column 'clicked' names a document twice")
    arm = default_arm
    if "arm" in col:
        arm = text_cell(table, i, "arm", col["arm"][i]).strip()
    teams = None
    if "teams" in col and col["teams"][i] is not None:
        teams = tuple(list_cell(table, i, "teams", col["teams"][i]))
        if len(teams) != len(shown):
            raise DataError(
                f"{table.where(i)}: column 'teams' has {len(teams)} entries for {len(shown)} ids shown "
                "(expected one run name per position)"
            )
    runs = tuple(list_cell(table, i, "runs", col["runs"][i])) if "runs" in col else None
    if runs is not None and (len(runs) != 2 or (teams and set(teams) - set(runs))):
        raise DataError(
            f"{table.where(i)}: column 'runs': expected the two runs interleaved, naming every team, "
            f"got {list(runs)}"
        )
    session = col["session"][i] if "session" in col else None
    return Impression(
        query,
        shown,
        clicked,
        arm,
        None if session is None else str(session),
        col["timestamp"][i] if "timestamp" in col else None,
        _dwell(table, i, len(clicked)) if "dwell" in col else None,
        teams,
        runs or None,
        table.where(i),
    )


def _dwell(table: Table, i: int, clicks: int) -> tuple[float, ...] | None:
    value = table.columns["dwell"][i]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and value.strip().startswith("["):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            pass
    values = value if isinstance(value, (list, tuple)) else [value] * clicks
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise DataError(
            f"{table.where(i)}: column 'dwell': expected seconds (a number, or one per clicked id), "
            f"got {str(value)[:40]!r}"
        ) from None
    if len(out) != clicks or any(v < 0 or math.isnan(v) for v in out):
        raise DataError(
            f"{table.where(i)}: column 'dwell': expected {clicks} number(s) of seconds >= 0, one per "
            f"clicked id, got {str(value)[:40]!r}"
        )
    return out
