"""``harness drift``: does production still look like what a release was trained and tested on?

Compared with the artifact's drift profile (:mod:`harness.ship.drift_profile`), for a file of recent
production queries (and optionally new documents):

* **vocabulary**: the share of the queries' words never seen in the training queries or the corpus,
  against the same share of the release's own test queries (the level a held-out query from the
  same domain has); checked: the excess over that level;
* **embeddings**: a domain classifier (scikit-learn's logistic regression on the artifact's
  embeddings, 5-fold cross-validated) told to separate production queries from the training
  queries; its held-out ROC AUC is 0.5 when they cannot be told apart and 1.0 when they are
  different domains; the p-value is the Mann-Whitney test of its held-out scores (the AUC's own
  test); checked: the AUC;
* **top-1 similarity**: each query's best cosine similarity in the profile's corpus sample (plus
  the new documents), against the test queries' (the mean shift and a two-sample Kolmogorov-Smirnov
  test, scipy); checked: the fall of the mean;
* **examples**: the production queries least like any training query (lowest nearest-neighbour
  similarity), with that neighbour and their unseen words.

New documents get the vocabulary and embedding checks too, against the corpus sample. A check
past its threshold makes the verdict ``retrain`` (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import DataError

MIN_QUERIES = 20
MAX_CLASSIFIER_ROWS = 2000


@dataclass(frozen=True)
class Thresholds:
    max_auc: float = 0.75  #: the domain classifier's held-out AUC
    max_new_terms: float = 0.10  #: unseen-word share above the test queries' own
    max_top1_drop: float = 0.05  #: fall of the mean top-1 similarity below the test queries'


def classifier_auc(reference, production, seed: int = 0) -> dict:
    """Held-out ROC AUC (and its Mann-Whitney p-value) of telling ``production`` rows from
    ``reference`` rows, classes balanced by sampling."""
    import numpy as np
    from scipy.stats import mannwhitneyu
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(seed)
    n = min(len(reference), len(production), MAX_CLASSIFIER_ROWS)
    ref = reference[rng.choice(len(reference), n, replace=False)]
    prod = production[rng.choice(len(production), n, replace=False)]
    x = np.vstack([ref, prod])
    y = np.r_[np.zeros(n), np.ones(n)]
    folds = StratifiedKFold(n_splits=min(5, n), shuffle=True, random_state=seed)
    p = cross_val_predict(LogisticRegression(max_iter=2000), x, y, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, p))
    pv = float(mannwhitneyu(p[y == 1], p[y == 0], alternative="greater").pvalue)
    return {"auc": round(auc, 4), "p_value": float(f"{pv:.4g}"), "rows_per_class": int(n)}


def check(
    profile: dict, emb: dict, encoder, queries: list[str], documents: list[str] | None, t: Thresholds
) -> dict:
    """The drift document (see the module's doc) of production ``queries`` (and ``documents``)."""
    import numpy as np
    from scipy.stats import ks_2samp

    from harness.ship.drift_profile import new_terms, sample, terms, top1

    unique = sorted(set(q.strip() for q in queries if q.strip()))
    if len(unique) < MIN_QUERIES:
        raise DataError(
            f"{len(unique)} distinct queries: a drift test needs at least {MIN_QUERIES} (give more "
            "recent queries)"
        )
    vocabulary = set(profile["vocabulary"])
    q_emb = encoder.encode_queries(unique)
    corpus = emb["corpus"]
    out: dict = {"kind": "drift", "queries": len(queries), "distinct_queries": len(unique), "checks": []}

    def add(name: str, value: float, threshold: float, drifted: bool, **more):
        out["checks"].append(
            {"name": name, "value": round(value, 4), "threshold": threshold, "drifted": bool(drifted), **more}
        )

    ref_terms = profile["reference"]["new_terms"]
    prod_terms = new_terms(unique, vocabulary)
    excess = prod_terms["term_share"] - ref_terms["term_share"]
    out["vocabulary"] = {"production": prod_terms, "test_queries": ref_terms, "excess": round(excess, 6)}
    add("new_terms", excess, t.max_new_terms, excess > t.max_new_terms, of="queries")
    clf = classifier_auc(emb["train_queries"], q_emb)
    out["embeddings"] = {"method": "logistic regression, 5-fold held-out ROC AUC", **clf}
    add(
        "query_embeddings",
        clf["auc"],
        t.max_auc,
        clf["auc"] > t.max_auc,
        p_value=clf["p_value"],
        of="queries",
    )
    if documents:
        docs = sample(sorted(set(d for d in documents if d.strip())), 2000)
        d_emb = encoder.encode_documents(docs)
        d_terms = new_terms(docs, vocabulary)
        d_clf = classifier_auc(corpus, d_emb) if min(len(docs), len(corpus)) >= MIN_QUERIES else None
        out["documents"] = {"documents": len(docs), "new_terms": d_terms, "embeddings": d_clf}
        if d_clf:
            add("document_embeddings", d_clf["auc"], t.max_auc, d_clf["auc"] > t.max_auc, of="documents")
        corpus = np.vstack([corpus, d_emb])
    prod_top1 = top1(q_emb, corpus)
    ref_top1 = emb["test_top1"]
    drop = float(np.mean(ref_top1) - np.mean(prod_top1))
    ks = ks_2samp(prod_top1, ref_top1)
    out["top1"] = {
        "production_mean": round(float(np.mean(prod_top1)), 4),
        "test_queries_mean": round(float(np.mean(ref_top1)), 4),
        "drop": round(drop, 4),
        "ks_statistic": round(float(ks.statistic), 4),
        "ks_p_value": float(f"{ks.pvalue:.4g}"),
    }
    add("top1_similarity", drop, t.max_top1_drop, drop > t.max_top1_drop, of="queries")
    nearest = q_emb @ emb["train_queries"].T
    best = nearest.argmax(axis=1)
    order = np.argsort(nearest.max(axis=1))[:10]
    out["examples"] = [
        {
            "query": unique[i],
            "nearest_training_query": profile["train_queries"][best[i]],
            "similarity": round(float(nearest[i, best[i]]), 4),
            "top1": round(float(prod_top1[i]), 4),
            "new_terms": sorted({w for w in terms(unique[i]) if w not in vocabulary}),
        }
        for i in order
    ]
    out["thresholds"] = {
        "max_auc": t.max_auc,
        "max_new_terms": t.max_new_terms,
        "max_top1_drop": t.max_top1_drop,
    }
    out["drifted"] = any(c["drifted"] for c in out["checks"])
    out["verdict"] = "retrain" if out["drifted"] else "ok"
    return out
