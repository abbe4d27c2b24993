"""The BM25 half of a hybrid artifact's index, and the ranking both halves serve.

``harness encode`` of an artifact with ``hybrid.json`` (:mod:`harness.ship.release`) writes, beside
the embeddings file ``FILE``, the folder ``FILE.bm25/``: bm25s's index of the same documents with the
artifact's BM25 settings, their ids in corpus order, and ``harness-bm25.json`` with the artifact's
fingerprint and the corpus digest that the embeddings file carries too (a SHA-256 of every id and
text, in order). ``--check`` refuses either half made by another artifact or from another corpus.

:func:`rank` scores queries against every document: the dense scores from the embeddings file, and
for a hybrid BM25's, fused as the run chose on dev (:func:`harness.evaluate.fusion.fused`), which is
what the report's hybrid row measured, by the same code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.errors import HarnessError

META = "harness-bm25.json"
QUERY_CHUNK = 64  #: queries scored at once (their scores against every document are held)


def hybrid_settings(artifact: Path) -> dict | None:
    """The artifact's ``hybrid.json`` (BM25 settings and fusion), or None for a dense artifact."""
    from harness.ship.release import HYBRID

    path = Path(artifact) / HYBRID
    return json.loads(path.read_text()) if path.is_file() else None


def index_dir(embeddings: Path) -> Path:
    """Where the BM25 index of the embeddings file ``embeddings`` lives."""
    embeddings = Path(embeddings)
    return embeddings.with_name(embeddings.name + ".bm25")


class CorpusDigest:
    """The SHA-256 of a corpus's ids and texts in order (what ties an index to its corpus)."""

    def __init__(self, start: str = ""):
        self.h = hashlib.sha256(start.encode())

    def update(self, ids: list[str], texts: list[str]) -> None:
        for doc_id, text in zip(ids, texts):
            self.h.update(json.dumps([doc_id, text]).encode())
            self.h.update(b"\n")

    def hexdigest(self) -> str:
        return self.h.hexdigest()[:32]


def build(
    folder: Path, ids: list[str], texts: list[str], settings: dict, fingerprint: str, corpus: str
) -> None:
    """Write the BM25 index of ``texts`` (ids ``ids``) into ``folder`` (replaced whole)."""
    import shutil

    from harness.evaluate.lexical import Bm25

    bm25 = settings["bm25"]
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    Bm25(texts, bm25["k1"], bm25["b"], bm25["stemmer"], bm25["stopwords"]).save(tmp / "bm25s")
    (tmp / "ids.json").write_text(json.dumps(ids))
    meta = {"fingerprint": fingerprint, "corpus": corpus, "documents": len(ids), "bm25": bm25}
    (tmp / META).write_text(json.dumps(meta, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def read_meta(folder: Path) -> dict | None:
    path = Path(folder) / META
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_index(embeddings: Path, fingerprint: str, corpus: str | None) -> tuple[bool, str]:
    """Whether the BM25 index beside ``embeddings`` was made by the artifact of ``fingerprint`` from
    the corpus of digest ``corpus`` (the embeddings file's)."""
    folder = index_dir(embeddings)
    meta = read_meta(folder)
    if meta is None:
        return False, (
            f"{folder}: no BM25 index of a hybrid artifact (`harness encode` of a hybrid artifact writes "
            "it beside the embeddings): reindex"
        )
    if meta["fingerprint"] != fingerprint:
        return False, (
            f"{folder}: BM25 index made by another artifact (fingerprint {meta['fingerprint']}), not by this "
            f"one ({fingerprint}): reindex"
        )
    if corpus is None or meta["corpus"] != corpus:
        return False, (
            f"{folder}: BM25 index made from another corpus (digest {meta['corpus']}) than {embeddings} "
            f"({corpus or 'none recorded'}): its rankings would not match; reindex"
        )
    return True, f"{folder}: BM25 index of the same artifact and corpus ({meta['documents']} documents)"


def rank(embeddings: Path, encoder, settings: dict | None, queries: list[str], depth: int):
    """``(doc_ids, top, scores)``: every document's id in corpus order, and per query the positions
    of its ``depth`` best documents (best first; ties keep corpus order) and their scores."""
    import numpy as np
    import pyarrow.parquet as pq

    from harness.evaluate.fusion import fused

    pf = pq.ParquetFile(embeddings)
    doc_ids = [
        i
        for g in range(pf.num_row_groups)
        for i in pf.read_row_group(g, columns=["id"]).column("id").to_pylist()
    ]
    bm25 = None
    if settings is not None:
        from harness.evaluate.lexical import Bm25

        folder = index_dir(embeddings)
        if json.loads((folder / "ids.json").read_text()) != doc_ids:
            raise HarnessError(f"{folder}: its documents are not those of {embeddings}, in order: reindex")
        b = settings["bm25"]
        bm25 = Bm25.load(folder / "bm25s", len(doc_ids), b["stemmer"], b["stopwords"])
    depth = min(depth, len(doc_ids))
    tops, values = [], []
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = queries[start : start + QUERY_CHUNK]
        q = encoder.encode_queries(chunk)
        dense = np.empty((len(chunk), len(doc_ids)), dtype=np.float32)
        at = 0
        for g in range(pf.num_row_groups):
            group = pf.read_row_group(g, columns=["vector"])
            vecs = np.asarray(group.column("vector").combine_chunks().flatten()).reshape(group.num_rows, -1)
            dense[:, at : at + group.num_rows] = q @ vecs.T
            at += group.num_rows
        scores = dense if bm25 is None else fused(dense, bm25.scores(chunk), settings["fusion"])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        tops.append(top)
        values.append(np.take_along_axis(scores, top, axis=1))
    return doc_ids, np.concatenate(tops), np.concatenate(values)
