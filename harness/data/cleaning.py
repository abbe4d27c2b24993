"""The cleaning every pair source's data goes through before it is split: what it changed and what
the user should look at, as ``data.cleaning`` in results.json, the terminal and the report.

Changed: documents (and queries) with no text are dropped with their judgements; documents
identical after normalising case and whitespace are merged into one (their judgements follow);
queries likewise; a judgement given twice is kept once (the higher grade where they differ: a
conflicting label), a negative (grade 0) that is also a positive of the same query is dropped;
training pairs whose query is its document are dropped. Only said: queries with very many
positives, and (with a tokenizer) the share of texts longer than
``max_seq_length``, which the model cuts (:func:`length_report`).
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from harness.api import RetrievalData, qrels_frame
from harness.data.tables import normalise

EXAMPLES = 3
#: a query with more positives than this is listed (a hub query, or pairs joined wrongly)
MANY_POSITIVES = 20


def _entry(count: int, examples=(), **more) -> dict:
    return {"count": count, "examples": [str(e)[:120] for e in list(examples)[:EXAMPLES]], **more}


def _merge_map(frame: pl.DataFrame) -> dict[str, str]:
    """id -> the id it is merged into (the first of its normalised text), for merged ids only."""
    first: dict[str, str] = {}
    out = {}
    for i, text in frame.select("id", "text").iter_rows():
        key = normalise(text)
        if key in first:
            out[i] = first[key]
        else:
            first[key] = i
    return out


def clean(data: RetrievalData, train_split: str) -> tuple[RetrievalData, dict]:
    """``data`` cleaned, and the report (each entry ``{count, examples}``)."""
    report: dict = {}
    empty_docs = data.corpus.filter(pl.col("text").str.strip_chars() == "")["id"]
    empty_queries = data.queries.filter(pl.col("text").str.strip_chars() == "")["id"]
    report["empty_documents"] = _entry(empty_docs.len(), empty_docs.to_list(), action="dropped")
    report["empty_queries"] = _entry(empty_queries.len(), empty_queries.to_list(), action="dropped")
    corpus = data.corpus.filter(~pl.col("id").is_in(empty_docs.implode()))
    queries = data.queries.filter(~pl.col("id").is_in(empty_queries.implode()))
    doc_map, query_map = _merge_map(corpus), _merge_map(queries)
    texts = dict(corpus.select("id", "text").iter_rows())
    report["merged_documents"] = _entry(
        len(doc_map),
        [texts[d][:80] for d in doc_map],
        action="merged",
        means="documents identical to another after normalising case and whitespace",
    )
    qtexts = dict(queries.select("id", "text").iter_rows())
    report["merged_queries"] = _entry(
        len(query_map),
        [qtexts[q][:80] for q in query_map],
        action="merged",
        means="queries identical to another after normalising case and whitespace",
    )
    corpus = corpus.filter(~pl.col("id").is_in(pl.Series(list(doc_map), dtype=pl.Utf8).implode()))
    queries = queries.filter(~pl.col("id").is_in(pl.Series(list(query_map), dtype=pl.Utf8).implode()))
    dropped_docs, dropped_queries = set(empty_docs.to_list()), set(empty_queries.to_list())
    counts = {
        "duplicate_pairs": [],
        "conflicting_labels": [],
        "negatives_also_positive": [],
        "query_equals_document": [],
    }
    qrels = {}
    qnorm = {q: normalise(t) for q, t in queries.iter_rows()}
    dnorm = {d: normalise(t) for d, t in corpus.iter_rows()}
    for name, frame in data.qrels.items():
        best: dict[tuple[str, str], int] = {}
        for q, d, s in frame.iter_rows():
            if q in dropped_queries or d in dropped_docs:
                continue
            q, d = query_map.get(q, q), doc_map.get(d, d)
            k = (q, d)
            if k in best:
                if best[k] == s:
                    if s > 0:  # one negative on each of a query's rows is how a table of pairs gives it
                        counts["duplicate_pairs"].append(k)
                elif min(best[k], s) == 0:
                    counts["negatives_also_positive"].append(k)
                else:
                    counts["conflicting_labels"].append(k)
                best[k] = max(best[k], s)
            else:
                best[k] = s
        rows = []
        for (q, d), s in best.items():
            if s > 0 and q in qnorm and d in dnorm and qnorm[q] == dnorm[d]:
                counts["query_equals_document"].append((q, d))
                if name == train_split:
                    continue  # teaches nothing: the model need only copy
            rows.append((q, d, s))
        qrels[name] = qrels_frame(rows)
    means = {
        "duplicate_pairs": ("dropped", "the same (query, document) judged relevant twice"),
        "conflicting_labels": ("the higher grade kept", "the same (query, document) given two grades"),
        "negatives_also_positive": (
            "the negative dropped",
            "a document given as a query's negative and as its positive",
        ),
        "query_equals_document": ("dropped from training", "a query identical to its relevant document"),
    }
    for k, pairs in counts.items():
        action, what = means[k]
        report[k] = _entry(
            len(pairs),
            [f"{qtexts.get(q, q)[:60]!r} -> {texts.get(d, d)[:60]!r}" for q, d in pairs],
            action=action,
            means=what,
        )
    many = []
    for name, frame in qrels.items():
        per = frame.filter(pl.col("score") > 0).group_by("query_id").len()
        many += [(name, q, n) for q, n in per.filter(pl.col("len") > MANY_POSITIVES).iter_rows()]
    report["many_positives"] = _entry(
        len(many),
        [f"{qtexts.get(q, q)[:60]!r} ({n} positives, {s})" for s, q, n in many],
        action="kept",
        means=f"queries with more than {MANY_POSITIVES} positives",
    )
    train_docs = data.train_documents
    if train_docs is not None:
        train_docs = train_docs.filter(pl.col("text").str.strip_chars() != "")
    return replace(data, corpus=corpus, queries=queries, qrels=qrels, train_documents=train_docs), report


def token_counter(model_dir):
    """A function from texts to their token counts with the model's tokenizer (no model loaded),
    or None when the folder has no tokenizer the ``tokenizers`` library reads."""
    from pathlib import Path

    file = Path(model_dir) / "tokenizer.json"
    if not file.is_file():
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(file))
    tok.no_truncation()
    tok.no_padding()
    return lambda texts: [len(e.ids) for e in tok.encode_batch(list(texts))]


def summary_lines(report: dict) -> list[str]:
    """One line per cleaning finding that is not zero, for the terminal."""
    out = []
    for key, entry in report.items():
        if key == "too_long":
            for t in entry:
                out.append(
                    f"texts over max_seq_length {t['max_seq_length']} ({t['model']}, {t['stage']}): "
                    f"{t['documents']:.0%} of documents, {t['queries']:.0%} of queries (cut when encoded)"
                )
            continue
        if not isinstance(entry, dict) or not entry.get("count"):
            continue
        eg = f"; e.g. {entry['examples'][0]}" if entry.get("examples") else ""
        out.append(f"{key.replace('_', ' ')}: {entry['count']} ({entry.get('action', '')}){eg}")
    return out


def model_max_length(model_dir) -> int | None:
    """The max_seq_length a sentence-transformers folder declares (its sentence_bert_config.json)."""
    import json
    from pathlib import Path

    try:
        return int(json.loads((Path(model_dir) / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_token_limit(model_dir) -> int | None:
    """The most tokens a sentence-transformers folder's transformer can read: its position embeddings
    (less the offset RoBERTa-style models keep for padding) and its tokenizer's limit, whichever is
    smaller. Not the ``max_seq_length`` it declares: that is the length it was trained at (256 for
    all-MiniLM-L6-v2, whose positions go to 512), a default, not a bound."""
    import json
    from pathlib import Path

    folder, limits = Path(model_dir), []
    try:
        modules = json.loads((folder / "modules.json").read_text())
        sub = next((m.get("path", "") for m in modules if m["type"].endswith("Transformer")), "")
    except (OSError, ValueError, KeyError, TypeError):
        sub = ""
    for name, key in (
        ("config.json", "max_position_embeddings"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        try:
            cfg = json.loads((folder / sub / name).read_text())
        except (OSError, ValueError):
            continue
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000:
            if (
                key == "max_position_embeddings"
                and isinstance(cfg.get("pad_token_id"), int)
                and cfg.get("model_type", "").endswith(("roberta", "camembert"))
            ):
                value -= cfg["pad_token_id"] + 1  # positions start after the padding index
            limits.append(value)
    return min(limits) if limits else model_max_length(folder)


def length_report(
    corpus_texts: list[str], query_texts: list[str], models: dict, stages: dict[str, int | None]
) -> list[dict]:
    """For each model (``{name: folder}``) and each stage (``{"training": 128, "evaluation": 256}``,
    None: the model's own limit): the share of documents and of queries the model cuts, and the most
    tokens it could read (``limit``)."""
    out = []
    for name, folder in models.items():
        count = token_counter(folder)
        if count is None:
            continue
        doc_lengths, query_lengths = count(corpus_texts), count(query_texts)
        limit = model_token_limit(folder)
        by_length: dict[int, list[str]] = {}
        for stage, n in stages.items():
            n = n or model_max_length(folder)
            if n:
                by_length.setdefault(n, []).append(stage)
        for n, names in sorted(by_length.items()):
            share = lambda lengths: round(sum(x > n for x in lengths) / len(lengths), 4) if lengths else 0.0  # noqa: E731
            out.append(
                {
                    "model": name,
                    "stage": " and ".join(names),
                    "max_seq_length": n,
                    "documents": share(doc_lengths),
                    "queries": share(query_lengths),
                    "limit": limit,
                }
            )
    return out
