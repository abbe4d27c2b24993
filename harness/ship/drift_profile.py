"""What an artifact keeps of its training and test data so that ``harness drift`` can tell, months
later, whether production still looks like it (:mod:`harness.monitor.drift`).

``harness release`` writes ``drift/`` into the artifact:

* ``profile.json``: the training queries' texts (up to 5,000, a seeded sample beyond), the vocabulary
  of the training queries and the corpus (the terms the model has seen in its domain), the test
  queries' own new-term share as the reference level, and the counts;
* ``embeddings.npz``: the artifact's own embeddings of those training queries, of the test queries,
  of a sample of the corpus (up to 2,000 documents), and each test query's top-1 similarity in that
  sample: the reference the production queries are compared with.

Embeddings are float16 (the comparisons are statistical); the fingerprint does not hash ``drift/``,
since it does not change a vector.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

FOLDER = "drift"
MAX_QUERIES = 5000
MAX_CORPUS = 2000
_TERM = re.compile(r"[^\W_]+", re.UNICODE)


def terms(text: str) -> list[str]:
    """The words of ``text``, case folded (letters and digits; punctuation splits)."""
    return _TERM.findall(text.casefold())


def new_terms(texts: list[str], vocabulary: set[str]) -> dict:
    """The share of the words of ``texts`` (and of the texts with a word) not in ``vocabulary``."""
    words = [terms(x) for x in texts]
    total = sum(len(w) for w in words)
    unseen = [[t for t in w if t not in vocabulary] for w in words]
    counts: dict[str, int] = {}
    for w in unseen:
        for t in w:
            counts[t] = counts.get(t, 0) + 1
    return {
        "term_share": round(sum(len(u) for u in unseen) / total, 6) if total else 0.0,
        "query_share": round(sum(1 for u in unseen if u) / len(texts), 6) if texts else 0.0,
        "top": [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]],
    }


def sample(items: list, k: int, seed: int = 0) -> list:
    return items if len(items) <= k else random.Random(seed).sample(items, k)


def top1(queries, corpus):
    """Each query's highest cosine similarity in ``corpus`` (both normalised)."""
    import numpy as np

    q, c = np.asarray(queries, np.float32), np.asarray(corpus, np.float32)
    return (q @ c.T).max(axis=1) if len(c) else np.zeros(len(q), np.float32)


def write_profile(folder: Path, encoder, texts: dict, data_fingerprint: str | None) -> dict:
    """Write ``folder/drift`` from ``texts`` (``train_queries``, ``test_queries``, ``corpus``: lists
    of texts) with ``encoder``; returns the manifest's ``drift`` record."""
    import numpy as np

    train = sample(sorted(set(texts["train_queries"])), MAX_QUERIES)
    test = sorted(set(texts["test_queries"]))
    corpus = sample(list(texts["corpus"]), MAX_CORPUS)
    vocabulary = set()
    for x in list(texts["train_queries"]) + list(texts["corpus"]):
        vocabulary.update(terms(x))
    emb = {
        "train_queries": encoder.encode_queries(train),
        "test_queries": encoder.encode_queries(test),
        "corpus": encoder.encode_documents(corpus),
    }
    emb["test_top1"] = top1(emb["test_queries"], emb["corpus"])
    out = Path(folder) / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "embeddings.npz", **{k: np.asarray(v, np.float16) for k, v in emb.items()})
    profile = {
        "version": 1,
        "data_fingerprint": data_fingerprint,
        "train_queries": train,
        "counts": {"train_queries": len(train), "test_queries": len(test), "corpus_sample": len(corpus)},
        "vocabulary": sorted(vocabulary),
        "reference": {
            "new_terms": new_terms(test, vocabulary),
            "top1_mean": round(float(np.mean(emb["test_top1"])), 6) if len(test) else None,
        },
    }
    (out / "profile.json").write_text(json.dumps(profile, ensure_ascii=False))
    return {"folder": FOLDER, **profile["counts"], "data_fingerprint": data_fingerprint}


def add_profile(artifact: Path, texts: dict, data_fingerprint: str | None) -> dict:
    """Write ``artifact``'s drift profile with its own encoder and record it in its manifest."""
    from harness.ship.index import open_encoder
    from harness.ship.release import MANIFEST

    artifact = Path(artifact)
    record = write_profile(artifact, open_encoder(artifact)[0], texts, data_fingerprint)
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["drift"] = record
    tmp = artifact / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(artifact / MANIFEST)
    return record


def read_profile(artifact: Path) -> tuple[dict, dict]:
    """(profile.json, embeddings) of ``artifact``; an artifact without them is a ConfigError."""
    import numpy as np

    from harness.errors import ConfigError

    folder = Path(artifact) / FOLDER
    if not (folder / "profile.json").is_file() or not (folder / "embeddings.npz").is_file():
        raise ConfigError(
            f"{artifact}: no drift profile ({FOLDER}/profile.json and embeddings.npz); `harness release` "
            "writes one when it can read the run's data again (see its output)"
        )
    with np.load(folder / "embeddings.npz") as z:
        emb = {k: z[k].astype(np.float32) for k in z.files}
    return json.loads((folder / "profile.json").read_text()), emb
