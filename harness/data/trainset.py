"""From the prepared data (and mined negatives) to the columns a loss trains on.

Every pair source gives (query, relevant document) pairs; a loss may need more (see
:data:`harness.api.COLUMNS`): a ``negative`` column (mined hard negatives, one per row), or scored
pairs (``sentence1``, ``sentence2``, ``score``: relevance grades scaled to (0, 1], mined negatives 0).
What is missing is said before any training, with what would supply it.
"""

from __future__ import annotations

import random

from harness.api import LossSpec
from harness.data.prepare import Prepared


def graded(data: Prepared) -> bool:
    """Whether the training pairs carry more than one relevance grade."""
    import polars as pl

    return data.train.qrels.filter(pl.col("score") > 0)["score"].n_unique() > 1


def has_negatives(data: Prepared) -> bool:
    """Whether the training queries have negatives of their own (judgements with score 0)."""
    return bool(data.train_negatives())


def build(
    data: Prepared,
    spec: LossSpec,
    options: dict,
    mined: dict | None,
    query_prompt: str = "",
    document_prompt: str = "",
    seed: int = 0,
) -> tuple[dict[str, list], dict]:
    """The training columns for ``spec``, prompts applied (queries get the query prompt), and what
    they hold (``columns``, and ``negatives``: how many rows have a negative given with the data,
    mined, or random).

    ``mined``: the columns of :func:`harness.data.mining.mine` (``anchor``, ``positive``, ``negative_1``...).
    Negatives given with the data (score-0 judgements of a training query) train as the ``negative``
    column: a loss that needs one negative gets a row per negative; an in-batch loss (MNRL) gets a row
    per (pair, given negative) with the mined negatives, if any, after it. A pair whose query has no
    given negative gets a random document in that place (never one of its positives or a held-out
    document), as mining does for the pairs it cannot serve."""
    needs = spec.columns_for(options)
    given = data.train_negatives()
    counts = {"given": 0, "mined": 0, "random": 0}
    if "score" in needs:
        cols = _scored(data, mined, given, counts)
    elif ("negative" in needs or spec.negatives_for(options)) and given:
        cols = _with_given(data, mined, given, "negative" in needs, seed, counts)
    elif "negative" in needs:
        cols = {"anchor": [], "positive": [], "negative": []}
        negs = sorted(k for k in mined if k.startswith("negative_"))
        for i, (a, p) in enumerate(zip(mined["anchor"], mined["positive"])):
            for k in negs:
                cols["anchor"].append(a)
                cols["positive"].append(p)
                cols["negative"].append(mined[k][i])
        counts["mined"] = len(cols["anchor"])
    elif mined is not None and spec.negatives_for(options):
        cols = {
            k: list(v)
            for k, v in mined.items()
            if k == "anchor" or k == "positive" or k.startswith("negative_")
        }
        counts["mined"] = len(cols["anchor"])
    else:
        anchors, positives = data.train_pairs()
        cols = {"anchor": anchors, "positive": positives}
    first = "sentence1" if "sentence1" in cols else "anchor"
    out = {
        k: v if k == "score" else [(query_prompt if k == first else document_prompt) + t for t in v]
        for k, v in cols.items()
    }
    return out, {"columns": list(out), "rows": rows(out), "negatives": counts}


def _with_given(
    data: Prepared, mined: dict | None, given: dict[str, list[str]], single: bool, seed: int, counts: dict
) -> dict[str, list]:
    """Rows with the negatives given with the data (see :func:`build`)."""
    from harness.data.mining import corpus_texts

    queries = dict(data.train.queries.select("id", "text").iter_rows())
    by_text = {queries[q]: negs for q, negs in given.items() if q in queries}
    anchors, positives = data.train_pairs()
    own: dict[str, set[str]] = {}
    for a, p in zip(anchors, positives):
        own.setdefault(a, set()).add(p)
    extra: dict[tuple[str, str], list[list[str]]] = {}
    if mined is not None:
        negs = sorted((k for k in mined if k.startswith("negative_")), key=lambda k: int(k.split("_")[1]))
        for i, (a, p) in enumerate(zip(mined["anchor"], mined["positive"])):
            extra.setdefault((a, p), []).append([mined[k][i] for k in negs])
    pool, _ = corpus_texts(data)
    rng = random.Random(seed)

    def random_negative(a: str) -> str:
        for _ in range(1000):
            d = pool[rng.randrange(len(pool))]
            if d not in own[a]:
                return d
        raise ValueError("no document to use as a random negative")

    out: dict[str, list] = {"anchor": [], "positive": []}
    width = 0 if single else (len(next(iter(extra.values()))[0]) if extra else 0)
    names = ["negative", *(f"negative_{i}" for i in range(1, width + 1))]  # given, then mined
    for n in names:
        out[n] = []
    taken: dict[tuple[str, str], int] = {}
    for a, p in zip(anchors, positives):
        own_negs = [n for n in by_text.get(a, []) if n not in own[a]]
        lists = extra.get((a, p))
        more = lists[taken.get((a, p), 0) % len(lists)] if lists else []
        taken[(a, p)] = taken.get((a, p), 0) + 1
        if single:  # one row per negative, given and mined
            chosen = [[n] for n in own_negs + more]
        else:
            chosen = [[n, *more] for n in own_negs]
        if not chosen:
            chosen = [[random_negative(a), *([] if single else more)]]
            counts["random"] += 1
        for row in chosen:
            if len(row) < len(names):  # a mined pair short of negatives: filled at random
                row = row + [random_negative(a) for _ in range(len(names) - len(row))]
            out["anchor"].append(a)
            out["positive"].append(p)
            for n, text in zip(names, row):
                out[n].append(text)
        counts["given"] += len(own_negs)
        counts["mined"] += len(more)
    return out


def _scored(
    data: Prepared, mined: dict | None, given: dict[str, list[str]] | None = None, counts: dict | None = None
) -> dict[str, list]:
    import polars as pl

    docs = data.documents()
    queries = dict(data.train.queries.select("id", "text").iter_rows())
    rel = data.train.qrels.filter(pl.col("score") > 0)
    top = max(rel["score"].max() or 1, 1)
    out = {"sentence1": [], "sentence2": [], "score": []}
    for q, d, s in rel.iter_rows():
        if q in queries and d in docs:
            out["sentence1"].append(queries[q])
            out["sentence2"].append(docs[d])
            out["score"].append(s / top)
    seen = set()
    for q, negs in (given or {}).items():
        for n in negs:
            if q in queries and (queries[q], n) not in seen:
                seen.add((queries[q], n))
                out["sentence1"].append(queries[q])
                out["sentence2"].append(n)
                out["score"].append(0.0)
                if counts is not None:
                    counts["given"] += 1
    if mined is not None:
        for k in sorted(k for k in mined if k.startswith("negative_")):
            for a, n in zip(mined["anchor"], mined[k]):
                if (a, n) not in seen:
                    seen.add((a, n))
                    out["sentence1"].append(a)
                    out["sentence2"].append(n)
                    out["score"].append(0.0)
                    if counts is not None:
                        counts["mined"] += 1
    return out


def subset(columns: dict[str, list], fraction: float, seed: int) -> dict[str, list]:
    """A random ``fraction`` of the rows (for the learning curve), the same rows for every column."""
    n = len(next(iter(columns.values())))
    keep = sorted(random.Random(seed).sample(range(n), max(1, round(n * fraction))))
    return {k: [v[i] for i in keep] for k, v in columns.items()}


def rows(columns: dict[str, list]) -> int:
    return len(next(iter(columns.values()), []))
