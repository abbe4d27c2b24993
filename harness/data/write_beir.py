"""``harness data --export DIR``: a suite's prepared data (cleaned and split as a run would) as one
BEIR folder, so a user can look at what will be trained on and feed it to any BEIR tool:
``DIR/<suite>/corpus.jsonl``, ``queries.jsonl``, ``qrels/{train,dev,test}.tsv`` (score-0 lines are the
negatives given with the data) and ``train_rows.jsonl`` (one training pair a line, with its given
negatives; negatives a loss mines are made at training time, with a model, and are not here)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.data.prepare import Prepared


def _jsonl(path: Path, rows) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def export_beir(data: Prepared, folder: Path) -> dict[str, int]:
    """Write ``data`` into ``folder`` (created); the number of lines of each file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    docs = data.documents()
    counts = {
        "corpus.jsonl": _jsonl(
            folder / "corpus.jsonl", ({"_id": d, "title": "", "text": t} for d, t in docs.items())
        )
    }
    queries: dict[str, str] = {}
    for split in (data.train, data.dev, data.test):
        queries.update(split.queries.select("id", "text").iter_rows())
    counts["queries.jsonl"] = _jsonl(
        folder / "queries.jsonl", ({"_id": q, "text": t} for q, t in queries.items())
    )
    for split in (data.train, data.dev, data.test):
        asked = set(split.queries["id"].to_list())  # a query judged only not relevant is in no split
        lines = ["query-id\tcorpus-id\tscore"] + [
            f"{q}\t{d}\t{s}" for q, d, s in split.qrels.iter_rows() if q in asked
        ]
        (folder / "qrels" / f"{split.name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[f"qrels/{split.name}.tsv"] = len(lines) - 1
    given = data.train_negatives()
    train_queries = dict(data.train.queries.select("id", "text").iter_rows())

    def rows():
        for q, d, s in data.train.qrels.iter_rows():
            if s > 0 and q in train_queries and d in docs:
                yield {
                    "query_id": q,
                    "query": train_queries[q],
                    "document_id": d,
                    "positive": docs[d],
                    "score": s,
                    "negatives": given.get(q, []),
                }

    counts["train_rows.jsonl"] = _jsonl(folder / "train_rows.jsonl", rows())
    return counts
