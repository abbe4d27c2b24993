"""How a dense model's ranking is fused with BM25's, chosen on the dev split.

A hybrid reference's ``method``, ``rrf_k`` and ``weight`` are what the suite fixes; what it leaves
unset is chosen here: every setting of :func:`settings_to_try` fuses the model's dev ranking with
BM25's over the dev corpus, and the best dev score of the primary metric is kept (the first of equal
ones, in the order tried). The test split then reads that one setting once. The record
(:func:`choose`) is the hybrid candidate's ``fusion`` in results.json, and what a release of it
serves (:mod:`harness.ship.hybrid`)."""

from __future__ import annotations

RRF_KS = (5, 10, 20, 40, 60, 100)  #: reciprocal rank fusion's k, tried when the suite sets none
WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  #: the dense share of weighted fusion


def settings_to_try(ref) -> list[dict]:
    """The fusion settings of hybrid reference ``ref`` to choose from: what it fixes, the grids for the
    rest (``method`` unset: both methods)."""
    out = []
    for method in [ref.method] if ref.method else ["rrf", "weighted"]:
        if method == "rrf":
            out += [
                {"method": "rrf", "rrf_k": k, "depth": ref.depth}
                for k in ([ref.rrf_k] if ref.rrf_k is not None else RRF_KS)
            ]
        else:
            out += [
                {"method": "weighted", "weight": w}
                for w in ([ref.weight] if ref.weight is not None else WEIGHTS)
            ]
    return out


def without_dev(ref, bm25_ref) -> dict:
    """The fusion of ``ref`` when there is no dev split to choose on: what it fixes, else the usual
    defaults (reciprocal rank fusion with k = 60; a weight of 0.5)."""
    setting = {"method": ref.method or "rrf"}
    if setting["method"] == "rrf":
        setting |= {"rrf_k": ref.rrf_k or 60, "depth": ref.depth}
    else:
        setting["weight"] = 0.5 if ref.weight is None else ref.weight
    return {
        **setting,
        "bm25": bm25_settings(bm25_ref),
        "of": ref.of,
        "chosen_by": "no dev split: the suite's setting or the default",
        "tried": [],
    }


def fused(dense, lexical, setting: dict):
    """:func:`harness.evaluate.lexical.fuse` of one setting of :func:`settings_to_try`."""
    from harness.evaluate.lexical import fuse

    return fuse(
        dense,
        lexical,
        setting["method"],
        setting.get("rrf_k", 60),
        setting.get("depth", 100),
        setting.get("weight", 0.5),
    )


def bm25_settings(ref) -> dict:
    """The BM25 settings a hybrid serves with (of its bm25 reference ``ref``)."""
    return {"k1": ref.k1, "b": ref.b, "stemmer": ref.stemmer, "stopwords": ref.stopwords, "method": "lucene"}


def choose(dense, lexical, doc_ids: list[str], split, k_values, primary: str, ref, bm25_ref) -> dict:
    """The fusion of hybrid reference ``ref`` chosen on ``split`` (dev): ``dense`` and ``lexical`` are
    its queries x ``doc_ids`` scores. ``{method, rrf_k | weight, depth, bm25, chosen_by, dev, dense_dev,
    tried}``: ``tried`` is every setting with its dev score, ``dense_dev`` the model's dev score alone."""
    from harness.evaluate.ranking import rank_scores

    def score(scores) -> float:
        return round(rank_scores(scores, doc_ids, split, k_values).metrics.get(primary, 0.0), 4)

    tried = [{**s, primary: score(fused(dense, lexical, s))} for s in settings_to_try(ref)]
    best = max(tried, key=lambda t: t[primary])  # the first of equal ones
    return {
        **{k: v for k, v in best.items() if k != primary},
        "bm25": bm25_settings(bm25_ref),
        "of": ref.of,
        "chosen_by": f"dev {primary}",
        "dev": {primary: best[primary]},
        "dense_dev": {primary: score(dense)},
        "tried": tried,
    }
