"""Tables of the user's own data: one reader for CSV, TSV, JSON lines, JSON and Parquet.

CSV, TSV and Parquet are read with polars (every CSV cell as text: a value is parsed where its
column is used, so a bad one is said with its line); JSON lines and JSON are read line by line so
that an error names the line. Errors name the file, and the line (CSV, TSV, JSON lines) or the row
(JSON, Parquet).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.api import json_file, json_lines, text_lines
from harness.errors import DataError

SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text as the cleaning compares it: case folded, runs of whitespace as one space, stripped."""
    return _SPACE.sub(" ", text).strip().casefold()


@dataclass
class Table:
    """A file's columns as Python lists (``None`` for a missing cell), one entry per data row."""

    path: Path
    columns: dict[str, list[Any]]
    height: int
    #: the first line of each row, when the file has lines (CSV, TSV, JSON lines); else rows are counted
    lines: list[int] | None = field(default=None, repr=False)
    #: computes ``lines`` when an error first needs them (a CSV's quoted cells may span lines: a second read)
    find_lines: Callable[[], list[int]] | None = field(default=None, repr=False)

    def where(self, row: int) -> str:
        """``file:line N`` (or ``file: row N``) of data row ``row`` (0-based)."""
        if self.lines is None and self.find_lines is not None:
            self.lines = self.find_lines()
        if self.lines is not None:
            return f"{self.path}:{self.lines[row]}"
        return f"{self.path}: row {row + 1}"

    def column(self, name: str, option: str) -> list[Any]:
        """The column ``name``; missing: DataError naming the file, the option that names it and the
        columns the file has."""
        if name not in self.columns:
            raise DataError(
                f"{self.path}: no column {name!r} (the option {option!r} names it); the file has the "
                f"columns {list(self.columns)}{self._hint(name)}"
            )
        return self.columns[name]

    def _hint(self, name: str) -> str:
        """Why a column may be missing: a name that differs only in case and spacing, or a header
        that is one column because the file is separated by another character."""
        close = [c for c in self.columns if normalise(c) == normalise(name)]
        if close:
            return f"; did you mean {close[0]!r}? (column names are matched exactly)"
        if len(self.columns) == 1 and self.path.suffix.lower() in (".csv", ".tsv"):
            header = next(iter(self.columns))
            sep = next((c for c in (";", "\t", ",", "|") if c in header), None)
            if sep:
                want = "commas" if self.path.suffix.lower() == ".csv" else "tabs"
                return (
                    f"; the header is one column holding {sep!r}: the file seems separated by {sep!r}, "
                    "where a "
                    f"{self.path.suffix.lower()} file is separated by {want}"
                )
        return ""

    def optional(self, given: str | None, default: str, option: str) -> str | None:
        """An optional column: the one ``given`` names (it must exist: an explicit setting never
        falls back), else ``default`` when the file has it, else None."""
        if given:
            self.column(given, option)
            return given
        return default if default in self.columns else None


def read_table(path: Path, what: str = "table") -> Table:
    """``path`` as a :class:`Table`; an unknown suffix, a missing, empty or malformed file is a
    DataError naming the file (and the line)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unknown file type {suffix or '(no suffix)'!r} for a {what}; expected one of "
            f"{', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (expected a {what} with a header row or records)")
    if suffix in (".csv", ".tsv"):
        table = _delimited(path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        table = _parquet(path)
    elif suffix == ".jsonl":
        rows, lines = [], []
        for n, obj in json_lines(path):
            rows.append(obj)
            lines.append(n)
        table = _records(path, rows, lines)
    else:
        value = json_file(path, list, "a JSON list of records")
        bad = next((i for i, r in enumerate(value) if not isinstance(r, dict)), None)
        if bad is not None:
            raise DataError(
                f"{path}: row {bad + 1}: expected a JSON object (a record), got {type(value[bad]).__name__}"
            )
        table = _records(path, value, None)
    if table.height == 0:
        raise DataError(f"{path}: no rows (expected a {what} with at least one record)")
    return table


def _records(path: Path, rows: list[dict], lines: list[int] | None) -> Table:
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    return Table(path, {k: [r.get(k) for r in rows] for k in names}, len(rows), lines)


def _delimited(path: Path, separator: str) -> Table:
    import polars as pl

    kind = "TSV" if separator == "\t" else "CSV"
    try:
        frame = pl.read_csv(
            path, separator=separator, infer_schema=False, quote_char='"'
        )  # quoted as Excel and pandas write
    except pl.exceptions.NoDataError:
        raise DataError(f"{path}: the file is empty (expected a header row naming the columns)") from None
    except pl.exceptions.PolarsError as e:  # read again to say where: the line that is not UTF-8, or ragged
        for _ in text_lines(path):
            pass
        starts, widths = _row_shapes(path, separator)
        ragged = (
            next(((n, w) for n, w in zip(starts, widths) if w and w != widths[0]), None) if widths else None
        )
        if ragged:
            raise DataError(
                f"{path}:{ragged[0]}: {ragged[1]} fields where the header has {widths[0]} (a "
                f"{'comma' if separator == ',' else 'tab'} or a quote too many or missing?)"
            ) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: not a readable {kind} file ({first[:200]})") from None
    dups = [c for c in frame.columns if re.fullmatch(r".+_duplicated_\d+", c)]
    if dups:
        raise DataError(f"{path}: the header names a column twice ({dups[0].rsplit('_duplicated_', 1)[0]!r})")
    columns = {c: frame.get_column(c).to_list() for c in frame.columns}
    keep = [
        i for i in range(frame.height) if any(col[i] is not None for col in columns.values())
    ]  # blank lines
    if len(keep) < frame.height:
        columns = {c: [v[i] for i in keep] for c, v in columns.items()}

    def find_lines() -> list[int]:
        starts, _ = _row_shapes(path, separator)
        lines = starts[1:] if len(starts) == frame.height + 1 else list(range(2, 2 + frame.height))
        return [lines[i] for i in keep]

    return Table(path, columns, len(keep), find_lines=find_lines)


def _row_shapes(path: Path, separator: str) -> tuple[list[int], list[int]]:
    """The line each row starts on (quoted cells may hold line breaks; the header is row 0) and its
    number of fields (0 for a blank line)."""
    import csv

    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=separator)
        starts, widths, start = [], [], 1
        try:
            for cells in reader:
                starts.append(start)
                widths.append(len(cells))
                start = reader.line_num + 1
        except csv.Error:
            pass
    return starts, widths


def _parquet(path: Path) -> Table:
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise DataError(
            f"{path}: not a readable Parquet file ({str(e).strip().splitlines()[0][:200]})"
        ) from None
    return Table(path, {c: frame.get_column(c).to_list() for c in frame.columns}, frame.height, None)


# --- cell values ---------------------------------------------------------------------------------


def text_cell(table: Table, row: int, column: str, value: Any, required: bool = True) -> str | None:
    """A text cell: a string (numbers are taken as their text); empty or missing: DataError when
    ``required``, else None."""
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    ):
        value = str(value)
    if value is None or (isinstance(value, float)):
        value = ""
    if not isinstance(value, str):
        raise DataError(
            f"{table.where(row)}: column {column!r}: expected text, got {type(value).__name__} "
            f"({str(value)[:40]!r})"
        )
    if not value.strip():
        if required:
            raise DataError(f"{table.where(row)}: column {column!r} is empty (every row needs a {column})")
        return None
    return value


def id_cell(table: Table, row: int, column: str, value: Any) -> str:
    """An id: text or a whole number, never empty."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = text_cell(table, row, column, value)
    return out.strip()


def whole_number(value: Any) -> int | None:
    """``value`` as a whole number >= 0 (``2``, ``2.0``, ``"2"``), or None when it is not one."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if (isinstance(value, float) and not value.is_integer()) or value < 0:
        return None
    return int(value)


def grade_cell(table: Table, row: int, column: str, value: Any) -> int:
    """A relevance grade: a whole number >= 0."""
    grade = whole_number(value)
    if grade is None and (value is None or (isinstance(value, str) and not value.strip())):
        raise DataError(
            f"{table.where(row)}: column {column!r} is empty (expected a relevance grade, a whole number "
            ">= 0, on every row)"
        )
    if grade is None:
        raise DataError(
            f"{table.where(row)}: column {column!r}: expected a relevance grade, a whole number >= 0 "
            f"(0 = not relevant, 1, 2, 3 ...), got {str(value)[:40]!r}"
        )
    return grade


def list_cell(table: Table, row: int, column: str, value: Any) -> list[str]:
    """A cell of texts: a list (Parquet, JSON), a JSON list written as text (CSV), or one text;
    empty texts are left out."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            value = parsed
    if isinstance(value, (list, tuple)):
        out = []
        for x in value:
            if x is not None and not isinstance(x, str):
                raise DataError(
                    f"{table.where(row)}: column {column!r}: expected a list of texts, found "
                    f"{type(x).__name__} ({str(x)[:40]!r})"
                )
            if x and x.strip():
                out.append(x)
        return out
    text = text_cell(table, row, column, value, required=False)
    return [text] if text else []


# --- ids and corpus files ------------------------------------------------------------------------


def text_frame(texts: dict[str, str]):
    """``{id: text}`` as the ``id``, ``text`` frame a pair source's corpus and queries are."""
    import polars as pl

    return pl.DataFrame(
        {"id": list(texts), "text": list(texts.values())}, schema={"id": pl.Utf8, "text": pl.Utf8}
    )


def text_id(prefix: str, text: str) -> str:
    """The id of a text that has none: a hash of it (queries: of its normalised form, so that queries
    differing only in case and spacing are one query)."""
    import hashlib

    return prefix + hashlib.sha1(text.encode()).hexdigest()[:16]


def query_id(text: str) -> str:
    return text_id("q", normalise(text))


def document_id(text: str) -> str:
    return text_id("d", text)


def read_corpus_table(
    path: Path, text_columns: tuple[str, ...], id_columns: tuple[str, ...] | None
) -> dict[str, str]:
    """A corpus file's documents, ``{id: text}``: the text from the first of ``text_columns`` the
    file has (a ``title`` column is put before it, as BEIR does), the id from the first of
    ``id_columns`` (None: the text's hash). Empty texts are kept (the cleaning drops and counts
    them); an id given twice with two texts is a DataError naming both rows."""
    table = read_table(path, "corpus")
    text_col = next((c for c in text_columns if c in table.columns), None)
    if text_col is None:
        raise DataError(
            f"{path}: no text column (looked for {list(dict.fromkeys(text_columns))}); the file has the "
            f"columns {list(table.columns)}"
        )
    id_col = None
    if id_columns is not None:
        id_col = next((c for c in id_columns if c in table.columns), None)
        if id_col is None:
            raise DataError(
                f"{path}: no id column (looked for {list(dict.fromkeys(id_columns))}): the pairs name "
                f"documents by id, so the corpus must too; the file has the columns {list(table.columns)}"
            )
    titles = table.columns.get("title")
    docs: dict[str, str] = {}
    first: dict[str, int] = {}
    for i, value in enumerate(table.columns[text_col]):
        text = text_cell(table, i, text_col, value, required=False) or ""
        title = text_cell(table, i, "title", titles[i], required=False) if titles else None
        text = f"{title.strip()} {text}".strip() if title else text.strip()
        key = id_cell(table, i, id_col, table.columns[id_col][i]) if id_col else document_id(text)
        if key in docs and docs[key] != text and id_col:
            raise DataError(
                f"{table.where(i)}: document id {key!r} again, with another text (first at "
                f"{table.where(first[key])})"
            )
        docs.setdefault(key, text)
        first.setdefault(key, i)
    return docs
