"""Export a sentence-transformers folder to ONNX with PyTorch's own exporter, and check that the
exported graph encodes like the torch model. Nothing here depends on optimum, so the export works
with sentence-transformers 5.x on transformers 4.5x and 6.x on transformers 5.x alike."""

from __future__ import annotations

import contextlib
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np

from harness.errors import CandidateError
from harness.export.pooling import add_pooling


@contextlib.contextmanager
def quiet_libraries():
    """Silence the tracer warnings and "please save the export" advice the exporters print."""
    names = ("", "sentence_transformers", "transformers", "torch.onnx", "onnxruntime")  # "": the root logger
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


#: opset of the exported graph: LayerNormalization is an ONNX op from 17 on, and onnxruntime's
#: transformer optimiser fuses the graphs PyTorch writes at it
OPSET = 17
#: the tokenizer outputs a graph takes, in the order the transformer's forward takes them
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def exporter() -> dict:
    """What writes the graphs, with the versions that made them (results.json records it per variant)."""
    from importlib.metadata import PackageNotFoundError, version

    def v(dist):
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    return {
        "exporter": f"torch.onnx.export (TorchScript, opset {OPSET})",
        "optimizer": "onnxruntime.transformers.optimizer",
        "quantizer": "onnxruntime.quantization",
        "versions": {
            d: v(d)
            for d in (
                "torch",
                "transformers",
                "sentence-transformers",
                "onnx",
                "onnxruntime-gpu",
                "onnxruntime",
            )
            if v(d)
        },
    }


def export_onnx(model_dir: Path, out_dir: Path) -> Path:
    """Write ``out_dir``: the sentence-transformers folder plus ``onnx/model.onnx``, the transformer
    exported with PyTorch's own exporter (dynamic batch and sequence axes) and the pooled
    ``sentence_embedding`` output added (see :mod:`harness.export.variants`). Returns ``out_dir``."""
    from sentence_transformers import SentenceTransformer

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with quiet_libraries():
            model = SentenceTransformer(str(model_dir), device="cpu")
            model.save(str(tmp))
            (tmp / "onnx").mkdir(exist_ok=True)
            export_transformer(model, tmp / "onnx" / "model.onnx")
    except Exception as e:  # noqa: BLE001 - torch's exporter and onnx raise many kinds
        shutil.rmtree(tmp, ignore_errors=True)
        raise CandidateError(f"ONNX export of {model_dir} failed: {type(e).__name__}: {e}") from None
    add_pooling(tmp / "onnx" / "model.onnx", tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def export_transformer(model, path: Path) -> None:
    """``torch.onnx.export`` of the first module's transformer of sentence-transformers ``model`` to
    ``path``: inputs as the tokenizer names them, output ``last_hidden_state``.

    It is traced with the eager attention: the SDPA path of transformers 5 builds its mask in a way
    onnxruntime's optimiser does not recognise, so no Attention would be fused (and int8 would lose
    its speed); the eager graph fuses the same on transformers 4.5x and 5.x."""
    import inspect

    import torch

    auto = model[0].auto_model
    accepted = inspect.signature(auto.forward).parameters
    names = [n for n in INPUTS if n in model.tokenizer.model_input_names and n in accepted]
    sample = model.tokenizer(
        ["an example sentence", "a second, longer example sentence to pad the first"],
        padding=True,
        return_tensors="pt",
    )

    class LastHiddenState(torch.nn.Module):
        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs):
            return self.transformer(**dict(zip(names, inputs)), return_dict=True).last_hidden_state

    before = auto.config._attn_implementation
    auto.set_attn_implementation("eager")
    try:
        wrapper = LastHiddenState(auto.float()).eval()
        axes = {0: "batch_size", 1: "sequence_length"}
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                tuple(sample[n] for n in names),
                str(path),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={**{n: axes for n in names}, "last_hidden_state": axes},
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        auto.set_attn_implementation(before)


def torch_embeddings(
    model_dir: Path, texts: list[str], device: str, max_seq_length: int | None, prompt: str = ""
) -> np.ndarray:
    """Unit-length sentence-transformers (torch) embeddings of ``texts``: the reference of every variant."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device=device)
    if max_seq_length:  # None: the model's own (a static model reads whole texts)
        model.max_seq_length = max_seq_length
    ref = model.encode(
        [prompt + t for t in texts], batch_size=32, convert_to_numpy=True, normalize_embeddings=True
    )
    del model
    return ref


def check_export(
    reference: np.ndarray, encoder, texts: list[str], min_cosine: float, what: str = "the ONNX export"
) -> dict:
    """Cosine similarity between the torch ``reference`` and ``encoder``'s embeddings of ``texts``;
    below ``min_cosine`` raises :class:`CandidateError`."""
    got = encoder.encode(texts, "document")
    got = got / np.clip(np.linalg.norm(got, axis=1, keepdims=True), 1e-12, None)
    cos = (reference * got).sum(axis=1)
    result = {"samples": len(texts), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
    if cos.min() < min_cosine:
        raise CandidateError(
            f"{what} differs from the torch model: cosine {cos.min():.5f} < {min_cosine} on "
            f"{int((cos < min_cosine).sum())} of {len(texts)} texts"
        )
    return result
