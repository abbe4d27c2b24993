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


def missing_columns(spec: LossSpec, options: dict, mines: bool, graded: bool | None = None) -> str | None:
    """Why the data cannot feed ``spec`` (with ``options``), or None. ``mines``: the loss entry has a
    ``[losses.hard_negatives]`` table; ``graded``: the training pairs have several relevance grades
    (None: not known yet, assumed)."""
    needs = spec.columns_for(options)
    if "negative" in needs and not mines:
        return (f"{spec.name} needs the column 'negative' (columns {list(needs)}), and the pairs give only 'anchor' "
                "and 'positive': add a [losses.hard_negatives] table to this loss to mine them")
    if "score" in needs and not mines and graded is False:
        return (f"{spec.name} needs scored pairs (columns {list(needs)}) whose scores differ, and every training "
                "pair has the same relevance grade: add a [losses.hard_negatives] table (mined negatives get "
                "score 0) or use a pair source with graded relevance")
    unknown = [c for c in needs if c not in ("anchor", "positive", "negative", "sentence1", "sentence2", "score")]
    if unknown:
        return f"{spec.name} needs the column(s) {unknown}, which no pair source gives"
    return None


def graded(data: Prepared) -> bool:
    """Whether the training pairs carry more than one relevance grade."""
    import polars as pl

    return data.train.qrels.filter(pl.col("score") > 0)["score"].n_unique() > 1


def build(data: Prepared, spec: LossSpec, options: dict, mined: dict | None, query_prompt: str = "",
          document_prompt: str = "") -> dict[str, list]:
    """The training columns for ``spec``, prompts applied (queries get the query prompt).

    ``mined``: the columns of :func:`harness.data.mining.mine` (``anchor``, ``positive``, ``negative_1``...)."""
    needs = spec.columns_for(options)
    if "score" in needs:
        cols = _scored(data, mined)
    elif "negative" in needs:
        cols = {"anchor": [], "positive": [], "negative": []}
        negs = sorted(k for k in mined if k.startswith("negative_"))
        for i, (a, p) in enumerate(zip(mined["anchor"], mined["positive"])):
            for k in negs:
                cols["anchor"].append(a)
                cols["positive"].append(p)
                cols["negative"].append(mined[k][i])
    elif mined is not None and spec.negatives_for(options):
        cols = {k: list(v) for k, v in mined.items() if k == "anchor" or k == "positive" or k.startswith("negative_")}
    else:
        anchors, positives = data.train_pairs()
        cols = {"anchor": anchors, "positive": positives}
    first = "sentence1" if "sentence1" in cols else "anchor"
    return {k: v if k == "score" else [(query_prompt if k == first else document_prompt) + t for t in v]
            for k, v in cols.items()}


def _scored(data: Prepared, mined: dict | None) -> dict[str, list]:
    import polars as pl

    docs = dict(data.corpus.select("id", "text").iter_rows())
    if data.train_documents is not None:
        docs.update(data.train_documents.iter_rows())
    queries = dict(data.train.queries.select("id", "text").iter_rows())
    rel = data.train.qrels.filter(pl.col("score") > 0)
    top = max(rel["score"].max() or 1, 1)
    out = {"sentence1": [], "sentence2": [], "score": []}
    for q, d, s in rel.iter_rows():
        if q in queries and d in docs:
            out["sentence1"].append(queries[q])
            out["sentence2"].append(docs[d])
            out["score"].append(s / top)
    if mined is not None:
        seen = set()
        for k in sorted(k for k in mined if k.startswith("negative_")):
            for a, n in zip(mined["anchor"], mined[k]):
                if (a, n) not in seen:
                    seen.add((a, n))
                    out["sentence1"].append(a)
                    out["sentence2"].append(n)
                    out["score"].append(0.0)
    return out


def subset(columns: dict[str, list], fraction: float, seed: int) -> dict[str, list]:
    """A random ``fraction`` of the rows (for the learning curve), the same rows for every column."""
    n = len(next(iter(columns.values())))
    keep = sorted(random.Random(seed).sample(range(n), max(1, round(n * fraction))))
    return {k: [v[i] for i in keep] for k, v in columns.items()}


def rows(columns: dict[str, list]) -> int:
    return len(next(iter(columns.values()), []))
