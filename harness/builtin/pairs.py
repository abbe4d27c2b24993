"""The ``pairs`` source: one table of (query, relevant document) pairs, as teams have them.

``file``: CSV, TSV, JSON lines, JSON (a list of records) or Parquet. Columns, each named by an
option: ``query`` and ``document`` (texts); optionally ``negative`` (documents known to be wrong for
the query: one column whose cells are a text or a list of texts, or a list of columns), ``score``
(a relevance grade: 0 makes the row a negative), ``split`` (train/test per row), ``query_id`` and
``document_id`` (where the user has ids; negatives then name document ids too). ``corpus``: an
optional file of further documents (searched at test, never anyone's positive).

Without a split column every pair is returned as train, and the harness makes the test split
(``data.test_fraction``, grouped so that nothing leaks: :mod:`harness.data.split`). Queries that
differ only in case and spacing are one query.
"""

from __future__ import annotations

from harness import hookimpl
from harness.api import LoadContext, Option, PairSource, RetrievalData, fingerprint, qrels_frame, suite_path
from harness.data.tables import (
    Table,
    document_id,
    grade_cell,
    id_cell,
    list_cell,
    normalise,
    query_id,
    read_corpus_table,
    read_table,
    text_cell,
    text_frame,
)
from harness.errors import DataError


class PairsSource(PairSource):
    name = "pairs"
    description = (
        "one table of (query, document) pairs: CSV, TSV, JSON lines, JSON or Parquet, with optional "
        "negatives, grades, split and ids; the test split made for you when there is none"
    )
    gives_negatives = True
    options = {
        "file": Option(
            str,
            None,
            "the table of pairs (.csv, .tsv, .jsonl, .json or .parquet), relative to the suite",
            required=True,
            path="file",
        ),
        "corpus": Option(
            str,
            None,
            "optional table of further documents (a 'text' column, or the document column's "
            "name; an optional 'title'; ids as the pairs have them)",
            path="file",
        ),
        "query": Option(str, "query", "the column of query texts"),
        "document": Option(str, "document", "the column of relevant document texts"),
        "negative": Option(
            (str, list),
            None,
            "the column of known wrong documents (a text or a list of texts per "
            "cell), or a list of such columns (default: 'negative', or "
            "negative_1, negative_2 ..., when the file has them)",
        ),
        "score": Option(
            str,
            None,
            "the column of relevance grades, whole numbers >= 0; 0 makes the row a negative "
            "(default: 'score' when the file has it)",
        ),
        "split": Option(
            str,
            None,
            "the column saying each row's split, train or test by the data table's split "
            "names (default: 'split' when the file has it; without one the test split is made)",
        ),
        "query_id": Option(
            str,
            None,
            "the column of query ids (default: 'query_id' when the file has it; else a "
            "query is known by its text)",
        ),
        "document_id": Option(
            str,
            None,
            "the column of document ids (default: 'document_id' when the file has it; "
            "else a document is known by its text)",
        ),
    }

    def load(self, options, ctx: LoadContext) -> RetrievalData:
        path = suite_path(ctx.suite_dir, options["file"])
        table = read_table(path, "table of pairs")
        cols = self.columns(table, options)
        train_name, test_name = ctx.splits
        queries: dict[str, str] = {}
        docs: dict[str, str] = {}
        rows: list[tuple[str, str, int, str | None]] = []  # (query id, doc id, grade, split)
        query_seen: dict[str, int] = {}
        uses_ids = cols["document_id"] is not None
        for i in range(table.height):
            cell = lambda key: table.columns[cols[key]][i]  # noqa: E731
            q = text_cell(table, i, cols["query"], cell("query"))
            d = text_cell(table, i, cols["document"], cell("document"))
            qid = id_cell(table, i, cols["query_id"], cell("query_id")) if cols["query_id"] else query_id(q)
            did = id_cell(table, i, cols["document_id"], cell("document_id")) if uses_ids else document_id(d)
            if cols["query_id"] and qid in queries and normalise(queries[qid]) != normalise(q):
                raise DataError(
                    f"{table.where(i)}: query id {qid!r} again, with another text (first at "
                    f"{table.where(query_seen[qid])})"
                )
            queries.setdefault(qid, q)
            query_seen.setdefault(qid, i)
            docs.setdefault(did, d)
            grade = grade_cell(table, i, cols["score"], cell("score")) if cols["score"] else 1
            where = None
            if cols["split"]:
                where = (text_cell(table, i, cols["split"], cell("split")) or "").strip()
                where = {train_name.casefold(): train_name, test_name.casefold(): test_name}.get(
                    where.casefold(), where
                )
                if where not in (train_name, test_name):
                    raise DataError(
                        f"{table.where(i)}: column {cols['split']!r}: expected {train_name!r} or "
                        f"{test_name!r} (the data table's train_split and test_split), got {where[:30]!r}"
                    )
            rows.append((qid, did, grade, where))
            for name in cols["negative"]:
                for n in list_cell(table, i, name, table.columns[name][i]):
                    if uses_ids:
                        nid = n.strip()
                    else:
                        nid = document_id(n)
                        docs.setdefault(nid, n)
                    rows.append((qid, nid, 0, where))
        files = [path]
        if options.get("corpus"):
            cpath = suite_path(ctx.suite_dir, options["corpus"])
            files.append(cpath)
            extra = read_corpus_table(
                cpath, (cols["document"], "text"), (cols["document_id"], "_id", "id") if uses_ids else None
            )
            for k, v in extra.items():
                docs.setdefault(k, v)
        if uses_ids:
            unknown = sorted({d for _, d, _, _ in rows if d not in docs})
            if unknown:
                raise DataError(
                    f"{path}: {len(unknown)} negative document id(s) are neither a row's document nor in "
                    f"the corpus file (e.g. {unknown[:3]})"
                )
        given = bool(cols["split"]) and any(where == test_name for *_, where in rows)
        info = {"method": f"given by the column {cols['split']!r}"} if given else {}
        said = (
            [
                f"{path}: the column {cols['split']!r} puts every row in {train_name!r}, so the harness "
                "makes the "
                f"test split (data.test_fraction)"
            ]
            if cols["split"] and not given
            else []
        )
        info["columns"] = {k: v for k, v in cols.items() if v}
        qrels: dict[str, list] = {train_name: [], test_name: []} if given else {train_name: []}
        for qid, did, grade, where in rows:  # without a split column every row is train: the harness splits
            qrels[where or train_name].append((qid, did, grade))
        return RetrievalData(
            text_frame(docs),
            text_frame(queries),
            {k: qrels_frame(v) for k, v in qrels.items()},
            fingerprint(files),
            f"table of pairs {path}",
            split_info=info,
            warnings=said,
        )

    def columns(self, table: Table, options: dict) -> dict:
        """The column each role comes from (None: absent); a column an option names that the file
        lacks is a DataError naming the option and the columns the file has."""
        cols = {}
        for key in ("query", "document"):
            table.column(options[key], key)
            cols[key] = options[key]
        for key in ("score", "split", "query_id", "document_id"):
            cols[key] = table.optional(options.get(key), key, key)
        negative = options.get("negative")
        if negative:
            names = [negative] if isinstance(negative, str) else list(negative)
            for n in names:
                if not isinstance(n, str):
                    raise DataError(
                        f"data.negative: expected a column name or a list of column names, got {negative!r}"
                    )
                table.column(n, "negative")
        elif "negative" in table.columns:
            names = ["negative"]
        else:
            names = sorted(
                (c for c in table.columns if c.startswith("negative_") and c[9:].isdigit()),
                key=lambda c: int(c[9:]),
            )
        cols["negative"] = names
        return cols


@hookimpl
def harness_register_pair_sources(register):
    register(PairsSource())
