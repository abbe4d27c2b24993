"""Encoding with onnxruntime: the exported graph, the fast tokenizer, pooling and normalisation as
the sentence-transformers model folder declares them.

The provider is asked for explicitly and checked after the session starts: onnxruntime-gpu lists
CUDA as available even where there is no GPU, and would otherwise fall back to the CPU silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.api import Encoder
from harness.core.st_folder import POOLED, read_st_folder
from harness.errors import CandidateError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":
        last = mask.sum(axis=1) - 1
        return hidden[np.arange(hidden.shape[0]), last]
    m = mask[..., None].astype(hidden.dtype)
    if mode == "max":
        return np.where(m > 0, hidden, -1e9).max(axis=1)
    return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)


class CachedEncoder(Encoder):
    """What every encoder of the harness shares: the prompt of the text kind, the cache of encoded
    text lists (``_cache``, None for none) and unit length for cosine models (``similarity``);
    subclasses give ``_encode(texts)``, the raw vectors of prompted texts."""

    prompts: dict[str, str]
    similarity: str = "cosine"
    _cache: dict[str, np.ndarray] | None = None

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts, "query")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts, "document")

    def encode(self, texts: Sequence[str], kind: str = "document") -> np.ndarray:
        """Vectors for ``texts`` (normalised to unit length for cosine models), cached per text list."""
        prompt = self.prompts.get(kind, "")
        key = (
            hashlib.sha1(("\x00".join([kind, prompt, *texts])).encode()).hexdigest()
            if self._cache is not None
            else ""
        )
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        out = self._encode([prompt + t for t in texts])
        if self.similarity == "cosine":
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        if self._cache is not None:
            self._cache[key] = out
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class OnnxEncoder(CachedEncoder):
    subfolder = "onnx"  #: where in the export folder its graphs are
    format = "onnx"

    """Encodes with ``<folder>/onnx/<file>`` through onnxruntime on the requested device
    (:class:`OpenVinoEncoder`: the same with OpenVINO).

    Texts are sorted by length so that a batch holds texts of similar length (little padding), and
    tokenised a batch at a time by the fast tokenizer; on CUDA the next batch is tokenised while the
    GPU runs the current one (``overlap``) and inputs and the output go through I/O binding. Where the
    graph has the pooled ``sentence_embedding`` output (every graph the harness exports does), only
    that one vector per text leaves the session."""

    def __init__(
        self,
        folder: Path,
        device: str = "cpu",
        *,
        file: str = "model.onnx",
        batch_size: int = 32,
        max_seq_length: int | None = None,
        query_prompt: str = "",
        document_prompt: str = "",
        progress: bool = False,
        cache: bool = True,
        overlap: bool | None = None,
        io_binding: bool | None = None,
    ):
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.path = self.folder / self.subfolder / file
        self.info = read_st_folder(self.folder)
        self.similarity = self.info["similarity"]
        self.max_seq_length = max_seq_length or self.info["max_seq_length"]
        self.batch_size = batch_size
        self.prompts = {"query": query_prompt, "document": document_prompt}
        self.progress = progress
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        tok_cfg = self.folder / "tokenizer_config.json"
        pad_token = json.loads(tok_cfg.read_text()).get("pad_token") if tok_cfg.is_file() else None
        pad_token = pad_token if isinstance(pad_token, str) else "[PAD]"
        pad_id = self.tokenizer.token_to_id(pad_token) or 0
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)  # to the longest text of each batch
        self._open(device)
        self.overlap = device == "cuda" if overlap is None else overlap
        self.io_binding = device == "cuda" if io_binding is None else io_binding
        self._cache: dict[str, np.ndarray] | None = {} if cache else None

    def _open(self, device: str) -> None:
        """Start the onnxruntime session on ``device``: ``session``, ``provider``, ``inputs``, ``output``."""
        import onnxruntime as ort

        wanted = PROVIDERS[device]
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        providers = [wanted] + (["CPUExecutionProvider"] if wanted != "CPUExecutionProvider" else [])
        if device == "cpu":
            opts.intra_op_num_threads = int(os.environ.get("HARNESS_ORT_THREADS", "0"))
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as e:  # noqa: BLE001
            raise CandidateError(f"onnxruntime could not load {self.path}: {e}") from None
        self.provider = self.session.get_providers()[0]
        if self.provider != wanted:
            raise CandidateError(
                f"asked onnxruntime for {wanted} but the session runs on {self.provider}: "
                "onnxruntime-gpu lists CUDA even without a usable GPU/CUDA runtime; use --device cpu or fix "
                "the CUDA install"
            )
        self.inputs = {i.name for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        self.pooled = POOLED in outputs
        self.output = POOLED if self.pooled else outputs[0]

    def describe(self) -> dict:
        return {
            "format": self.format,
            "provider": self.provider,
            "file": str(self.path),
            "max_seq_length": self.max_seq_length,
            "batch_size": self.batch_size,
            "pooling": self.info["pooling"],
            "pooled_in_graph": self.pooled,
            "normalize": self.info["normalize"],
            "similarity": self.info["similarity"],
            "query_prompt": self.prompts["query"],
            "document_prompt": self.prompts["document"],
        }

    def _feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        return feeds

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if not self.io_binding:
            out = self.session.run([self.output], feeds)[0]
        else:
            binding = self.session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, value)
            binding.bind_output(self.output, "cpu")
            self.session.run_with_iobinding(binding)
            out = binding.copy_outputs_to_cpu()[0]
        if not self.pooled:
            out = pool(out, feeds["attention_mask"], self.info["pooling"])
        return out.astype(np.float32, copy=False)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        # longest first, by characters (like sentence-transformers): batches of similar length, little padding
        order = np.argsort(-np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        batches = [order[s : s + self.batch_size] for s in range(0, len(texts), self.batch_size)]
        result: np.ndarray | None = None
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="encoding (onnxruntime)", unit="text", leave=False)
        pool_ = None
        if self.overlap and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool_ = ThreadPoolExecutor(1, thread_name_prefix="harness-tokenize")
        try:

            def tokenize(b):
                return self._feeds([texts[i] for i in b])

            pending = pool_.submit(tokenize, batches[0]) if pool_ else None
            for n, batch in enumerate(batches):
                if pool_:
                    feeds = pending.result()
                    if n + 1 < len(batches):  # tokenise the next batch while this one runs
                        pending = pool_.submit(tokenize, batches[n + 1])
                else:
                    feeds = tokenize(batch)
                vecs = self._run(feeds)
                if result is None:
                    result = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
                result[batch] = vecs
                if bar:
                    bar.update(len(batch))
        finally:
            if pool_:
                pool_.shutdown(wait=True, cancel_futures=True)
            if bar:
                bar.close()
        return result


class Truncated(Encoder):
    """Another encoder's vectors cut to their first ``dim`` values (and renormalised for cosine
    models): how a Matryoshka-trained model is used at a smaller size. The inner encoder caches its
    vectors, so evaluating several sizes encodes the texts once."""

    def __init__(self, inner: Encoder, dim: int):
        self.inner, self.dim = inner, dim

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _cut(self, vectors: np.ndarray) -> np.ndarray:
        if self.dim > vectors.shape[1]:
            raise CandidateError(
                f"cannot evaluate at {self.dim} dimensions: the embeddings have {vectors.shape[1]}"
            )
        out = np.array(vectors[:, : self.dim], dtype=np.float32, copy=True)
        if self.inner.info["similarity"] == "cosine":
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._cut(self.inner.encode_queries(texts))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._cut(self.inner.encode_documents(texts))

    def encode(self, texts: Sequence[str], kind: str = "document") -> np.ndarray:
        return self._cut(self.inner.encode(texts, kind))


class OpenVinoEncoder(OnnxEncoder):
    """The same encoder (tokenizer, length-sorted batches, pooling, normalisation) running an OpenVINO
    IR graph of ``<folder>/openvino/<file>`` on the CPU (``pip install ".[openvino]"``)."""

    subfolder = "openvino"
    format = "openvino"

    def _open(self, device: str) -> None:
        if device != "cpu":
            raise CandidateError("OpenVINO variants run on the CPU only")
        why = openvino_missing()
        if why:
            raise CandidateError(why)
        import openvino as ov

        try:
            compiled = ov.Core().compile_model(str(self.path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        except Exception as e:  # noqa: BLE001
            raise CandidateError(f"OpenVINO could not load {self.path}: {e}") from None
        self.request = compiled.create_infer_request()
        self.provider = f"openvino {ov.__version__.split('-')[0]} CPU"
        self.inputs = {i.get_any_name() for i in compiled.inputs}
        named = {name: o for o in compiled.outputs for name in o.get_names()}
        self.pooled = POOLED in named
        self.output = named[POOLED] if self.pooled else compiled.outputs[0]

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        out = self.request.infer({k: v for k, v in feeds.items() if k in self.inputs})[self.output]
        if not self.pooled:
            out = pool(out, feeds["attention_mask"], self.info["pooling"])
        return np.asarray(out, dtype=np.float32)


def openvino_missing() -> str | None:
    """Why OpenVINO variants cannot be built or run here, or None."""
    import importlib.util

    missing = [m for m in ("openvino", "nncf") if importlib.util.find_spec(m) is None]
    return (
        f'the openvino-int8 variant needs {" and ".join(missing)}: pip install ".[openvino]"'
        if missing
        else None
    )
