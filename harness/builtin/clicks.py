"""The ``clicks`` source: pairs from a search log, the first place a team with a search box gets them.

``file``: a table of impressions, one row per result shown: the query, the document id, its
position in the results, whether it was clicked, and optionally a timestamp and a session; or the
impression log `harness ab` reads (one row per list shown: ``query``, ``shown``, ``clicked``, see
:mod:`harness.data.impressions`), so the log of an A/B test trains the next model. A ``corpus``
table holds the documents (id and text).

- Positives: the documents clicked for a query at least ``min_clicks`` times (summed over the log;
  queries differing only in case and spacing are one query).
- Hard negatives: skip-above, the documents shown above a clicked one in the same result list and
  not clicked there (a list is the rows of one session and query, else of one query and
  timestamp, else of one query). A document clicked for the query anywhere stays a positive.
- Test split: by time with ``test_after`` (lists shown on or after that date are test, older ones
  train, as in production), else made by the harness, grouped by hash (``data.test_fraction``). Either way it
  measures agreement with clicks, a proxy for relevance biased toward what the old ranking
  showed; ``test_qrels`` (a table of query, document_id, optional score judged by people) makes
  the test split instead, and every list of the log trains.
"""

from __future__ import annotations

import datetime as dt

from harness import hookimpl
from harness.api import LoadContext, Option, PairSource, RetrievalData, fingerprint, qrels_frame, suite_path
from harness.data.tables import (
    Table,
    grade_cell,
    id_cell,
    query_id,
    read_corpus_table,
    read_table,
    text_cell,
    text_frame,
    whole_number,
)
from harness.errors import DataError

PROXY = (
    "the test split is made from clicks: it measures agreement with what users clicked, a proxy for "
    "relevance "
    "that favours what the old ranking showed; give data.test_qrels (judged by people) for a test of "
    "relevance"
)

_TRUE, _FALSE = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f", ""}


def clicked_cell(table: Table, row: int, column: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise DataError(
        f"{table.where(row)}: column {column!r}: expected clicked or not (1/0, true/false, yes/no), "
        f"got {str(value)[:30]!r}"
    )


def position_cell(table: Table, row: int, column: str, value) -> int:
    position = whole_number(value)
    if position is None:
        raise DataError(
            f"{table.where(row)}: column {column!r}: expected the result's position, a whole number "
            f"(1 = top), got {str(value)[:30]!r}"
        )
    return position


def parse_time(value, where: str) -> dt.datetime:
    """An ISO date or date-time (``2026-10-01``, ``2026-10-01T12:30:00``, with or without a zone), a
    datetime, or seconds since 1970; compared in UTC."""
    if isinstance(value, dt.datetime):
        t = value
    elif isinstance(value, dt.date):
        t = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        t = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    else:
        try:
            t = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise DataError(
                f"{where}: expected a date or time like 2026-10-01 or 2026-10-01T12:30:00, got "
                f"{str(value)[:40]!r}"
            ) from None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


class ClicksSource(PairSource):
    name = "clicks"
    description = (
        "a search log (query, document id, position, clicked[, timestamp, session]) and a corpus: "
        "clicked documents are positives, skipped ones above a click hard negatives"
    )
    gives_negatives = True
    options = {
        "file": Option(
            str,
            None,
            "the impressions table (.csv, .tsv, .jsonl, .json or .parquet), one row per result shown",
            required=True,
            path="file",
        ),
        "corpus": Option(
            str,
            None,
            "the documents: a table with an id column ('document_id', '_id' or 'id') and "
            "'text' (optional 'title')",
            required=True,
            path="file",
        ),
        "query": Option(str, "query", "the column of query texts"),
        "document_id": Option(str, "document_id", "the column of the shown document's id"),
        "position": Option(str, "position", "the column of the result's position (1 = top)"),
        "clicked": Option(str, "clicked", "the column saying whether it was clicked (1/0, true/false)"),
        "timestamp": Option(
            str, None, "the column of when it was shown (default: 'timestamp' when the file has it)"
        ),
        "session": Option(
            str, None, "the column of the search session (default: 'session' when the file has it)"
        ),
        "min_clicks": Option(
            int, 1, "a document is a positive of a query once clicked at least this many times"
        ),
        "test_after": Option(
            str,
            None,
            "a date: result lists shown on or after it are the test split, older ones "
            "train (needs timestamps)",
        ),
        "test_qrels": Option(
            str,
            None,
            "a table of judged (query, document_id[, score]) pairs that is the test split instead of clicks",
            path="file",
        ),
    }

    def load(self, options, ctx: LoadContext) -> RetrievalData:
        if options["min_clicks"] < 1:
            raise DataError(f"data.min_clicks: expected a number of clicks >= 1, got {options['min_clicks']}")
        if options.get("test_after") and options.get("test_qrels"):
            raise DataError(
                "data.test_after and data.test_qrels: give one of them (test_qrels makes the test split, "
                "test_after makes it from the newer clicks)"
            )
        cutoff = parse_time(options["test_after"], "data.test_after") if options.get("test_after") else None
        path = suite_path(ctx.suite_dir, options["file"])
        cpath = suite_path(ctx.suite_dir, options["corpus"])
        docs = read_corpus_table(cpath, ("text",), (options["document_id"], "_id", "id", "document_id"))
        table = read_table(path, "table of impressions")
        if "shown" in table.columns and options["document_id"] not in table.columns:
            lists, queries, times, cols = result_lists(table, docs, cpath, cutoff is not None)
        else:
            lists, queries, times, cols = result_rows(table, options, docs, cpath, cutoff is not None)
        train_name, test_name = ctx.splits
        period = {k: (test_name if cutoff is not None and times[k] >= cutoff else train_name) for k in lists}
        judged, info = self.judgements(lists, period, options["min_clicks"])
        judged.setdefault(train_name, [])
        if cutoff is not None:
            judged.setdefault(test_name, [])
        files = [path, cpath]
        warnings = []
        if options.get("test_qrels"):
            qpath = suite_path(ctx.suite_dir, options["test_qrels"])
            files.append(qpath)
            test_rows = self.test_qrels(qpath, docs, queries)
            qrels = {train_name: judged[train_name], test_name: test_rows}
            info["method"] = f"test split judged by people ({qpath.name}); every click trains"
        elif cutoff is not None:
            qrels = judged
            info["method"] = f"by time: lists shown on or after {options['test_after']} are test"
            warnings.append(PROXY)
        else:  # the harness makes the test split, grouped by hash (harness.data.split)
            qrels = {train_name: judged[train_name]}
            warnings.append(PROXY)
        for name in qrels:
            if not any(g > 0 for _, _, g in qrels[name]):
                raise DataError(
                    f"{path}: no {name!r} query has a document clicked at least data.min_clicks = "
                    f"{options['min_clicks']} times ({info.get('method', 'before the split')})"
                )
        info["columns"] = {k: v for k, v in cols.items() if v}
        return RetrievalData(
            text_frame(docs),
            text_frame(queries),
            {k: qrels_frame(v) for k, v in qrels.items()},
            fingerprint(files),
            f"search log {path}",
            warnings=warnings,
            split_info=info,
        )

    @staticmethod
    def judgements(lists: dict, period: dict, min_clicks: int) -> tuple[dict[str, list], dict]:
        """Per split: (query id, doc id, 1) for the documents clicked at least ``min_clicks`` times,
        and (query id, doc id, 0) for the skipped-above ones that are not positives; and the counts."""
        clicks: dict[tuple[str, str, str], int] = {}
        skipped: dict[tuple[str, str, str], int] = {}
        for key, shown in lists.items():
            qid, split = key[0], period[key]
            deepest = max((p for p, _, c, _ in shown if c), default=None)
            for p, doc, c, _ in shown:
                if c:
                    clicks[(split, qid, doc)] = clicks.get((split, qid, doc), 0) + 1
                elif deepest is not None and p < deepest:
                    skipped[(split, qid, doc)] = skipped.get((split, qid, doc), 0) + 1
        positives = {k for k, n in clicks.items() if n >= min_clicks}
        out: dict[str, list] = {s: [] for s in set(period.values())}
        for split, qid, doc in sorted(positives):
            out[split].append((qid, doc, 1))
        both = 0
        for k in sorted(skipped):
            if k in clicks:  # clicked for the query somewhere: not a negative
                both += 1
                continue
            out[k[0]].append((k[1], k[2], 0))
        info = {
            "impressions": sum(len(v) for v in lists.values()),
            "result_lists": len(lists),
            "clicks": sum(clicks.values()),
            "positives": len(positives),
            "below_min_clicks": len(clicks) - len(positives),
            "min_clicks": min_clicks,
            "skip_above_negatives": sum(1 for k in skipped if k not in clicks),
            "clicked_and_skipped": both,
        }
        return out, info

    @staticmethod
    def test_qrels(path, docs: dict[str, str], queries: dict[str, str]) -> list[tuple[str, str, int]]:
        table = read_table(path, "table of judged pairs")
        qcol, dcol = table.column("query", "test_qrels"), table.column("document_id", "test_qrels")
        scol = table.columns.get("score")
        rows = []
        for i in range(table.height):
            q = text_cell(table, i, "query", qcol[i])
            d = id_cell(table, i, "document_id", dcol[i])
            if d not in docs:
                raise DataError(f"{table.where(i)}: document id {d!r} is not in the corpus")
            qid = query_id(q)
            queries.setdefault(qid, q)
            rows.append((qid, d, grade_cell(table, i, "score", scol[i]) if scol else 1))
        return rows


def result_rows(table, options, docs, cpath, need_time: bool):
    """Result lists of a table with one row per result shown."""
    cols = {k: options[k] for k in ("query", "document_id", "position", "clicked")}
    for k, v in cols.items():
        table.column(v, k)
    for k in ("timestamp", "session"):
        cols[k] = table.optional(options.get(k), k, k)
    if need_time and not cols["timestamp"]:
        raise DataError(
            f"data.test_after: {table.path} has no timestamp column (the columns are "
            f"{list(table.columns)}); set data.timestamp to the column of when each result was shown"
        )
    queries: dict[str, str] = {}
    lists: dict[tuple, list[tuple[int, str, bool, int]]] = {}  # list key -> (position, doc, clicked, row)
    times: dict[tuple, dt.datetime] = {}
    for i in range(table.height):
        cell = lambda key: table.columns[cols[key]][i]  # noqa: E731
        q = text_cell(table, i, cols["query"], cell("query"))
        doc = id_cell(table, i, cols["document_id"], cell("document_id"))
        if doc not in docs:
            raise DataError(f"{table.where(i)}: document id {doc!r} is not in the corpus {cpath}")
        qid = query_id(q)
        queries.setdefault(qid, q)
        t = (
            parse_time(cell("timestamp"), f"{table.where(i)}: column {cols['timestamp']!r}")
            if cols["timestamp"]
            else None
        )
        if cols["session"]:
            key = (qid, "s", str(cell("session")))
        elif t is not None:
            key = (qid, "t", t.isoformat())
        else:
            key = (qid,)
        lists.setdefault(key, []).append(
            (
                position_cell(table, i, cols["position"], cell("position")),
                doc,
                clicked_cell(table, i, cols["clicked"], cell("clicked")),
                i,
            )
        )
        if t is not None:
            times[key] = min(times.get(key, t), t)
    return lists, queries, times, cols


def result_lists(table, docs, cpath, need_time: bool):
    """Result lists of an impression log as `harness ab` reads it (one row per list shown:
    query, shown, clicked[, session, timestamp]; :mod:`harness.data.impressions`)."""
    from harness.data.impressions import impressions_of

    queries: dict[str, str] = {}
    lists: dict[tuple, list[tuple[int, str, bool, int]]] = {}
    times: dict[tuple, dt.datetime] = {}
    for i, imp in enumerate(impressions_of(table)):
        missing = next((d for d in imp.shown if d not in docs), None)
        if missing is not None:
            raise DataError(f"{imp.where}: document id {missing!r} is not in the corpus {cpath}")
        if need_time and imp.timestamp is None:
            raise DataError(f"{imp.where}: data.test_after needs a 'timestamp' on every impression")
        qid = query_id(imp.query)
        queries.setdefault(qid, imp.query)
        key = (qid, "i", str(i))
        clicked = set(imp.clicked)
        lists[key] = [(p, d, d in clicked, i) for p, d in enumerate(imp.shown, 1)]
        if imp.timestamp is not None:
            times[key] = parse_time(imp.timestamp, f"{imp.where}: column 'timestamp'")
    cols = {"query": "query", "shown": "shown", "clicked": "clicked"}
    return lists, queries, times, cols


@hookimpl
def harness_register_pair_sources(register):
    register(ClicksSource())
