"""Batch search: a file of queries against an index (``harness search FILE ARTIFACT --queries Q``),
rankings written as a TREC run and as JSONL, and with ``--qrels`` the report's metrics computed by the
retrieval evaluator's own code (:func:`harness.evaluate.ranking.rank_metrics`), so that a user scores
a release on their own judgements exactly as the run scored it.

Queries: JSONL (``_id`` or ``id``, ``text``) or TSV (``id<TAB>text``). Judgements: BEIR's TSV
(``query-id  corpus-id  score``, with its header) or TREC qrels (``query-id 0 doc-id relevance``).
Every problem names the file and line (exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import DataError


def read_queries(path: Path) -> list[tuple[str, str]]:
    """``(id, text)`` of every query of ``path``; an id twice, a missing id or an empty text is an
    error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected queries as JSONL or TSV)")
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    jsonl = path.suffix.lower() in (".jsonl", ".json")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if jsonl:
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    raise DataError(f"{path}:{n}: not a JSON object ({e})") from None
                key = "_id" if "_id" in obj else "id"
                if not isinstance(obj, dict) or obj.get(key) in (None, ""):
                    raise DataError(f"{path}:{n}: no query id (expected an '_id' or 'id' key)")
                qid, text = str(obj[key]), obj.get("text")
                if not isinstance(text, str):
                    raise DataError(f"{path}:{n}: query {qid!r} has no string 'text'")
            else:
                parts = line.rstrip("\n").split("\t", 1)
                if len(parts) != 2 or not parts[0].strip():
                    raise DataError(f"{path}:{n}: expected 'query id<TAB>text'")
                qid, text = parts[0].strip(), parts[1]
            if not text.strip():
                raise DataError(f"{path}:{n}: query {qid!r} is empty")
            if qid in seen:
                raise DataError(f"{path}:{n}: query id {qid!r} again (first on line {seen[qid]})")
            seen[qid] = n
            out.append((qid, text))
    if not out:
        raise DataError(f"{path}: no queries")
    return out


def read_qrels(
    path: Path, queries: set[str] | None, documents: set[str] | None
) -> list[tuple[str, str, int]]:
    """``(query id, doc id, score)`` judgements of ``path``; a query not in ``queries`` or a document
    not in ``documents`` (the index's) is an error naming the line (None: not checked)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected judgements as BEIR TSV or TREC qrels)")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if n == 1 and parts[0].lower() in ("query-id", "query_id", "qid"):
                continue  # BEIR's header
            if len(parts) == 3:
                qid, doc, score = parts
            elif len(parts) == 4:
                qid, _, doc, score = parts
            else:
                raise DataError(
                    f"{path}:{n}: expected 'query-id corpus-id score' (BEIR) or "
                    "'query-id 0 doc-id relevance' "
                    f"(TREC), got {len(parts)} fields"
                )
            try:
                value = int(float(score))
            except ValueError:
                raise DataError(f"{path}:{n}: the relevance {score!r} is not a number") from None
            if queries is not None and qid not in queries:
                raise DataError(f"{path}:{n}: query id {qid!r} is not in the queries file")
            if documents is not None and doc not in documents:
                raise DataError(f"{path}:{n}: document id {doc!r} is not in the index (was it encoded?)")
            out.append((qid, doc, value))
    if not out:
        raise DataError(f"{path}: no judgements")
    return out


def evaluate(doc_ids, top, queries: list[tuple[str, str]], qrels, k_values) -> dict:
    """The metrics of the rankings ``top`` on the judged queries (those with a relevant document, as
    the run's test split): ``{metrics, per_query, queries}``."""
    import numpy as np
    import polars as pl

    from harness.api import Split, qrels_frame
    from harness.core.metrics import rounded
    from harness.evaluate.ranking import rank_metrics

    judged = {q for q, _, s in qrels if s > 0}
    rows = [i for i, (q, _) in enumerate(queries) if q in judged]
    order = sorted(rows, key=lambda i: queries[i][0])  # the run's test split is sorted by id
    split = Split(
        "search",
        pl.DataFrame({"id": [queries[i][0] for i in order], "text": [queries[i][1] for i in order]}),
        qrels_frame(qrels),
    )
    res = rank_metrics(np.asarray(top)[order], doc_ids, split, k_values)
    return {
        **rounded(res.metrics, res.per_query),
        "queries": len(order),
        "unjudged": len(queries) - len(order),
    }


def write_rankings(doc_ids, top, scores, queries, k: int, trec: Path | None, jsonl: Path | None, tag: str):
    """The top ``k`` of every query as a TREC run (``qid Q0 doc rank score tag``) and/or JSONL
    (``{"query_id", "results": [{"id", "score"}]}``)."""
    if trec:
        with Path(trec).open("w") as f:
            for (qid, _), row, vals in zip(queries, top, scores):
                for rank, (i, s) in enumerate(zip(row[:k], vals[:k]), 1):
                    f.write(f"{qid} Q0 {doc_ids[i]} {rank} {float(s):.6f} {tag}\n")
    if jsonl:
        with Path(jsonl).open("w") as f:
            for (qid, _), row, vals in zip(queries, top, scores):
                results = [{"id": doc_ids[i], "score": round(float(s), 6)} for i, s in zip(row[:k], vals[:k])]
                f.write(json.dumps({"query_id": qid, "results": results}) + "\n")
