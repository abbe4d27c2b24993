"""Encoding with a static embedding model (a sentence-transformers ``StaticEmbedding`` folder:
``tokenizer.json`` and the token table in ``model.safetensors``): each text is tokenised without
special tokens and its vector is the mean of its tokens' rows, as ``StaticEmbedding`` computes it,
in numpy: no transformer, no torch and no ONNX at serving time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.encode.encoder import CachedEncoder
from harness.errors import CandidateError

TABLE = "model.safetensors"


def is_static(folder: Path) -> bool:
    """Whether ``folder`` is a sentence-transformers model made of one StaticEmbedding module."""
    modules = Path(folder) / "modules.json"
    if not modules.is_file():
        return False
    types = [m["type"].rsplit(".", 1)[-1] for m in json.loads(modules.read_text())]
    return types[:1] == ["StaticEmbedding"]


class StaticEncoder(CachedEncoder):
    """Encodes with the token table of the StaticEmbedding folder ``folder`` on the CPU."""

    format = "static"
    provider = "numpy (CPU)"

    def __init__(
        self,
        folder: Path,
        *,
        batch_size: int = 1024,
        max_seq_length: int | None = None,
        query_prompt: str = "",
        document_prompt: str = "",
        cache: bool = True,
    ):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        if not is_static(self.folder):
            raise CandidateError(f"{self.folder}: not a StaticEmbedding model (modules.json)")
        self.path = self.folder / TABLE
        tables = load_file(str(self.path))
        if len(tables) != 1:
            raise CandidateError(f"{self.path}: expected one token table, found {sorted(tables)}")
        self.table = next(iter(tables.values())).astype(np.float32)
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        # the tokenizer file's own truncation (Model2Vec writes 512 tokens), as StaticEmbedding reads it
        truncation = self.tokenizer.truncation
        self.max_seq_length = max_seq_length or (truncation or {}).get("max_length")
        if max_seq_length:
            self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.batch_size = batch_size
        self.prompts = {"query": query_prompt, "document": document_prompt}
        cfg = self.folder / "config_sentence_transformers.json"
        similarity = json.loads(cfg.read_text()).get("similarity_fn_name") if cfg.is_file() else None
        self.similarity = similarity or "cosine"
        self._cache: dict[str, np.ndarray] | None = {} if cache else None

    def describe(self) -> dict:
        return {
            "format": self.format,
            "provider": self.provider,
            "file": str(self.path),
            "max_seq_length": self.max_seq_length,
            "batch_size": self.batch_size,
            "pooling": "mean",
            "pooled_in_graph": False,
            "normalize": False,
            "similarity": self.similarity,
            "query_prompt": self.prompts["query"],
            "document_prompt": self.prompts["document"],
            "vocabulary": int(self.table.shape[0]),
            "dimensions": int(self.table.shape[1]),
        }

    def _encode(self, texts: list[str]) -> np.ndarray:
        from scipy.sparse import csr_matrix

        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            encodings = self.tokenizer.encode_batch_fast(
                texts[start : start + self.batch_size], add_special_tokens=False
            )
            lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
            ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=int(lengths.sum()))
            # each text's token counts as one sparse row: the product with the table sums its rows
            weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
            bags = csr_matrix(
                (weights, ids, np.concatenate([[0], np.cumsum(lengths)])),
                shape=(len(encodings), self.table.shape[0]),
            )
            out[start : start + len(encodings)] = bags @ self.table
        return out
