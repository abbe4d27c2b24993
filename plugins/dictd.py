"""Acronyms and jargon from any dictd dictionary: V.E.R.A., FOLDOC, the Jargon File, ...

A dictd dictionary is two files: ``<name>.index`` (``headword<TAB>offset<TAB>length`` lines, offset
and length in base64) and ``<name>.dict.dz`` (dictzip, i.e. gzip, text; or a plain ``<name>.dict``).
Query = the headword as the entry writes it (``3GPP``), document = the entry's definition
(``Third Generation Partnerships Projects (org.)``). A headword with several entries is one query
with each of them relevant. There is no official split: each headword goes to test or train by a
hash of its text, so the split does not change when the dictionary grows and no test headword is
ever trained on.

The ``expansion`` evaluator asks what a user of an acronym dictionary asks: is the right expansion
ranked first? ``expansion@k``: the expansion (the definition's first phrase, before any
parenthesis or bracket, case and spacing ignored) of one of the top k documents is the expansion of
a relevant one; another entry that spells out the same words counts as right.

Data: ``path`` option, ``$HARNESS_DATA_DIR/<dictionary>``, ``/usr/share/dictd`` (Debian and
Ubuntu: ``apt-get install dict-vera``, ``dict-foldoc``, ``dict-jargon``).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import polars as pl

from harness import hookimpl
from harness.api import (
    DataError,
    EvalResult,
    Evaluator,
    Option,
    PairSource,
    RetrievalData,
    fingerprint,
    locate,
    qrels_frame,
)

B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def b64_number(text: str) -> int:
    """dictd's base64 numbers: big-endian digits of the alphabet ``A-Za-z0-9+/``."""
    n = 0
    for c in text:
        if c not in B64:
            raise ValueError(f"{c!r} is not a base64 digit")
        n = n * 64 + B64[c]
    return n


def read_dictd(index: Path, data: Path) -> list[tuple[str, str, str]]:
    """``(index headword, headword as written, definition)`` for every entry, in index order.
    Entries whose headword starts with ``00database`` / ``00-database`` (the dictionary's own
    metadata) are left out."""
    raw = gzip.open(data).read() if data.suffix == ".dz" else data.read_bytes()
    out = []
    for n, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise DataError(f"{index}:{n}: expected 'headword<TAB>offset<TAB>length'")
        head = parts[0]
        if head.replace("-", "").startswith("00database"):
            continue
        try:
            start, length = b64_number(parts[1]), b64_number(parts[2])
        except ValueError as e:
            raise DataError(f"{index}:{n}: {e}") from None
        if start + length > len(raw):
            raise DataError(
                f"{index}:{n}: entry at {start}+{length} lies beyond the end of {data} ({len(raw)} bytes)"
            )
        lines = raw[start : start + length].decode("utf-8", "replace").strip("\n").splitlines()
        written = lines[0].strip() if lines else head
        definition = " ".join(" ".join(lines[1:]).split())
        if definition:
            out.append((head, written, definition))
    return out


def in_test(headword: str, fraction: float) -> bool:
    return int(hashlib.sha1(headword.encode()).hexdigest()[:8], 16) / 2**32 < fraction


class Dictd(PairSource):
    name = "dictd"
    description = (
        "dictd dictionaries (V.E.R.A., FOLDOC, Jargon File): headword -> definition, split by headword"
    )
    options = {
        "dictionary": Option(str, "vera", "file name without .index / .dict.dz"),
        "path": Option(
            str,
            None,
            "folder with the two files (default: $HARNESS_DATA_DIR/<dictionary>, then /usr/share/dictd)",
            path="folder",
        ),
        "holdout": Option(float, 0.2, "share of headwords held out for the test split"),
    }

    def load(self, options, ctx):
        name = options["dictionary"]
        if not 0 < options["holdout"] < 1:
            raise DataError(f"data.holdout: expected a number between 0 and 1, got {options['holdout']}")
        index = f"{name}.index"
        folder = locate(
            ctx,
            name,
            (index,),
            options.get("path"),
            elsewhere=[Path("/usr/share/dictd")],
            hint=f"on Debian or Ubuntu, `apt-get install dict-{name}` installs it in /usr/share/dictd",
        )
        data = next((folder / f for f in (f"{name}.dict.dz", f"{name}.dict") if (folder / f).is_file()), None)
        if data is None:
            raise DataError(f"{folder / index}: found, but neither {name}.dict.dz nor {name}.dict beside it")
        entries = read_dictd(folder / index, data)
        if not entries:
            raise DataError(f"{folder / index}: no entries")
        query_of: dict[str, str] = {}
        queries, docs, qrels = [], [], {"train": [], "test": []}
        for i, (head, written, definition) in enumerate(entries):
            if head not in query_of:
                query_of[head] = f"q{len(query_of)}"
                queries.append((query_of[head], written))
            docs.append((f"d{i}", definition))
            split = "test" if in_test(head, options["holdout"]) else "train"
            qrels[split].append((query_of[head], f"d{i}", 1))
        return RetrievalData(
            corpus=pl.DataFrame(docs, schema={"id": pl.Utf8, "text": pl.Utf8}, orient="row"),
            queries=pl.DataFrame(queries, schema={"id": pl.Utf8, "text": pl.Utf8}, orient="row"),
            qrels={s: qrels_frame(r) for s, r in qrels.items()},
            fingerprint=fingerprint([folder / index, data]),
            description=f"dictd dictionary {name} from {folder}",
        )


def expansion(definition: str) -> str:
    """The first phrase of a definition: what the acronym stands for (the whole definition when that
    phrase has no letters, as in ``(see ...)`` or ``???``)."""
    first = " ".join(re.split(r"[(\[,;]", definition, maxsplit=1)[0].lower().split())
    return first if re.search(r"[a-z]", first) else " ".join(definition.lower().split())


class ExpansionEvaluator(Evaluator):
    name = "expansion"
    description = "acronyms: the right expansion among the top k (another entry with the same words counts)"

    def metric_names(self, k_values):
        return [f"expansion@{k}" for k in sorted({k for k in k_values if k <= 10} | {1})]

    def evaluate(self, encoder, corpus, split, k_values):
        from harness.api import top_k

        names = self.metric_names(k_values)
        ks = [int(m.split("@")[1]) for m in names]
        ids, texts = corpus["id"].to_list(), corpus["text"].to_list()
        idx, _ = top_k(
            encoder.encode_queries(split.queries["text"].to_list()), encoder.encode_documents(texts), max(ks)
        )
        position = {d: i for i, d in enumerate(ids)}
        relevant = split.relevant()
        per_query = {}
        for qid, row in zip(split.queries["id"].to_list(), idx):
            right = {expansion(texts[position[d]]) for d in relevant.get(qid, {}) if d in position}
            per_query[qid] = {
                f"expansion@{k}": float(any(expansion(texts[i]) in right for i in row[:k])) for k in ks
            }
        return EvalResult(
            {m: sum(v[m] for v in per_query.values()) / max(len(per_query), 1) for m in names}, per_query
        )


@hookimpl
def harness_register_pair_sources(register):
    register(Dictd())


@hookimpl
def harness_register_evaluators(register):
    register(ExpansionEvaluator())
