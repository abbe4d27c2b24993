"""The ``jsonl`` pair source: your own pairs, one JSON object per line.

``pairs``: a file of ``{"query": ..., "document": ...}`` lines (extra keys ignored), one per split
(``train = "train.jsonl"``, ``test = "test.jsonl"``, relative to the suite). Identical texts share an
id, so a document relevant to several queries is one document; all documents of all splits form
the corpus, plus an optional ``corpus`` file of ``{"text": ...}`` lines (distractors).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness import hookimpl
from harness.api import LoadContext, Option, PairSource, RetrievalData, json_lines, qrels_frame, suite_path
from harness.data.tables import text_frame
from harness.errors import DataError


def _id(prefix: str, text: str) -> str:
    return prefix + hashlib.sha1(text.encode()).hexdigest()[:12]


def _lines(path: Path, keys: tuple[str, ...]):
    for n, obj in json_lines(path):
        missing = [k for k in keys if not isinstance(obj.get(k), str)]
        if missing:
            raise DataError(f"{path}:{n}: expected a string under {missing[0]!r}")
        yield tuple(obj[k] for k in keys)


class JsonlSource(PairSource):
    name = "jsonl"
    description = "(query, document) pairs from JSON-lines files, one file per split"
    options = {
        "train": Option(str, None, "JSONL file of the train split's pairs", required=True, path="file"),
        "test": Option(str, None, "JSONL file of the test split's pairs", required=True, path="file"),
        "corpus": Option(str, None, 'optional JSONL file of extra documents ({"text": ...})', path="file"),
    }

    def load(self, options, ctx: LoadContext) -> RetrievalData:
        docs: dict[str, str] = {}
        queries: dict[str, str] = {}
        qrels: dict[str, list[tuple[str, str, int]]] = {}
        files = []
        for split in ("train", "test"):
            path = suite_path(ctx.suite_dir, options[split])
            files.append(path)
            rows = []
            for q, d in _lines(path, ("query", "document")):
                qid, did = _id("q", q), _id("d", d)
                queries[qid], docs[did] = q, d
                rows.append((qid, did, 1))
            if not rows:
                raise DataError(f"{path}: no pairs")
            qrels[split] = rows
        if options.get("corpus"):
            path = suite_path(ctx.suite_dir, options["corpus"])
            files.append(path)
            for (d,) in _lines(path, ("text",)):
                docs.setdefault(_id("d", d), d)
        h = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
        return RetrievalData(
            text_frame(docs),
            text_frame(queries),
            {s: qrels_frame(r) for s, r in qrels.items()},
            h,
            "JSONL pairs",
        )


@hookimpl
def harness_register_pair_sources(register):
    register(JsonlSource())
