"""ONNX export and onnxruntime encoding on the tiny model: fidelity, provider checks, pooling."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.st_folder import read_st_folder
from harness.encode.encoder import OnnxEncoder, pool
from harness.errors import CandidateError
from harness.export.onnx import check_export, export_onnx, torch_embeddings

from .conftest import synthetic_pairs


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    return export_onnx(tiny_model, tmp_path_factory.mktemp("export") / "export")


def test_export_encodes_like_torch(tiny_model, exported):
    texts = [p["document"] for p in synthetic_pairs(40, 5)]
    enc = OnnxEncoder(exported, "cpu", batch_size=7)
    assert enc.provider == "CPUExecutionProvider"
    assert enc.describe()["format"] == "onnx" and enc.max_seq_length == 64
    result = check_export(torch_embeddings(tiny_model, texts, "cpu", enc.max_seq_length), enc, texts, 0.999)
    assert result["min_cosine"] > 0.9999
    vecs = enc.encode_documents(texts)
    assert vecs.shape == (40, 32) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)


def test_a_different_model_fails_the_export_check(exported, tmp_path):
    from .conftest import _tiny_model

    other = _tiny_model(tmp_path, seed=1)  # same architecture, other weights
    enc = OnnxEncoder(exported, "cpu")
    with pytest.raises(CandidateError, match="differs from the torch model"):
        texts = ["what is w1 w2", "the w3 of w4"]
        check_export(torch_embeddings(other, texts, "cpu", 64), enc, texts, 0.999)


def test_order_and_batching_do_not_change_vectors(exported):
    texts = [p["query"] for p in synthetic_pairs(30, 6)] + ["w1", "w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12"]
    a = OnnxEncoder(exported, "cpu", batch_size=4).encode(texts)
    b = OnnxEncoder(exported, "cpu", batch_size=64).encode(texts[::-1])[::-1]
    assert np.allclose(a, b, atol=1e-5)


def test_prompts_are_prepended(exported):
    enc = OnnxEncoder(exported, "cpu", query_prompt="query ", document_prompt="doc ")
    plain = OnnxEncoder(exported, "cpu")
    assert np.allclose(enc.encode_queries(["w1 w2"]), plain.encode(["query w1 w2"]), atol=1e-6)
    assert not np.allclose(enc.encode_queries(["w1 w2"]), enc.encode_documents(["w1 w2"]), atol=1e-3)


def test_asking_for_cuda_without_a_gpu_is_not_a_silent_fallback(exported):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(
        CandidateError, match="CUDAExecutionProvider but the session runs on CPUExecutionProvider"
    ):
        OnnxEncoder(exported, "cuda")


@pytest.mark.gpu
def test_cuda_provider_on_a_gpu(exported):
    enc = OnnxEncoder(exported, "cuda")
    assert enc.provider == "CUDAExecutionProvider" and enc.io_binding and enc.overlap


@pytest.mark.gpu
def test_fp16_variant_on_a_gpu(tiny_model, exported):
    from harness.export.variants import build

    texts = [p["document"] for p in synthetic_pairs(40, 10)]
    path = build(exported, "fp16", "cuda")
    enc = OnnxEncoder(exported, "cuda", file=path.name, batch_size=16, cache=False)
    assert enc.pooled and enc.provider == "CUDAExecutionProvider"
    assert (
        check_export(torch_embeddings(tiny_model, texts, "cuda", 64), enc, texts, 0.99)["mean_cosine"] > 0.995
    )


def test_pooling_modes():
    h = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    assert pool(h, mask, "cls").tolist() == [[0, 1], [6, 7]]
    assert pool(h, mask, "mean").tolist() == [[1, 2], [8, 9]]
    assert pool(h, mask, "max").tolist() == [[2, 3], [10, 11]]
    assert pool(h, mask, "lasttoken").tolist() == [[2, 3], [10, 11]]


def test_reads_sentence_transformers_folder(tiny_model):
    info = read_st_folder(tiny_model)
    assert info == {
        "pooling": "mean",
        "normalize": True,
        "max_seq_length": 64,
        "similarity": "cosine",
        "include_prompt": True,
    }


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("cls", False), ("max", True)])
def test_pooling_in_the_graph_matches_pooling_on_the_host(tmp_path, pooling, normalize):
    from .conftest import _tiny_model

    model = _tiny_model(tmp_path, seed=3, pooling=pooling, normalize=normalize)
    folder = export_onnx(model, tmp_path / "export")
    enc = OnnxEncoder(folder, "cpu", batch_size=5, cache=False)
    assert enc.pooled and enc.output == "sentence_embedding"
    texts = [p["document"] for p in synthetic_pairs(12, 7)] + ["w1", "w2 w3"]  # unequal lengths: padding
    feeds = enc._feeds(texts)
    pooled, hidden = enc.session.run(["sentence_embedding", "last_hidden_state"], feeds)
    host = pool(hidden, feeds["attention_mask"], pooling)
    if normalize:
        host = host / np.linalg.norm(host, axis=1, keepdims=True)
    assert np.allclose(pooled, host, atol=1e-5)
    ref = torch_embeddings(model, texts, "cpu", 64)
    assert check_export(ref, enc, texts, 0.9999)["min_cosine"] > 0.9999


def test_io_binding_and_overlapped_tokenisation_give_the_same_vectors(exported):
    texts = [p["document"] for p in synthetic_pairs(50, 8)]
    plain = OnnxEncoder(exported, "cpu", batch_size=8, overlap=False, io_binding=False, cache=False).encode(
        texts
    )
    fast = OnnxEncoder(exported, "cpu", batch_size=8, overlap=True, io_binding=True, cache=False).encode(
        texts
    )
    assert np.allclose(plain, fast, atol=1e-6)


def test_variants_are_built_beside_fp32_and_encode_like_it(tiny_model, exported):
    from harness.core.machine import cpu_isa
    from harness.core.variants import VARIANTS
    from harness.export.variants import build

    texts = [p["document"] for p in synthetic_pairs(30, 9)]
    ref = torch_embeddings(tiny_model, texts, "cpu", 64)
    for name in ("O1", "O2", "O3", "int8"):
        path = build(exported, name, "cpu")
        assert path.parent == exported / "onnx" and path.name == VARIANTS[name].file()
        enc = OnnxEncoder(exported, "cpu", file=path.name, cache=False)
        assert enc.pooled, name
        check = check_export(ref, enc, texts, 0.999 if VARIANTS[name].exact else 0.9)
        assert check["mean_cosine"] > (0.9999 if name in ("O1", "O2") else 0.97), (name, check)
    assert VARIANTS["int8"].file() == f"model_qint8_{cpu_isa()}.onnx"
    with pytest.raises(CandidateError, match="runs on cuda"):
        build(exported, "fp16", "cpu")


def test_o2_fuses_attention_and_fp16_is_float16_on_the_installed_versions(exported, tmp_path):
    """The graph torch.onnx.export writes is one onnxruntime's optimiser recognises, on transformers
    4.5x and 5.x alike: every layer's attention fused in O2 (int8 is quantised from it), and O4
    stored in float16 with float32 inputs and outputs."""
    import json

    import onnx

    from harness.export.variants import _optimize, build

    layers = json.loads((exported / "config.json").read_text())["num_hidden_layers"]
    ops = [n.op_type for n in onnx.load(str(build(exported, "O2", "cpu"))).graph.node]
    assert ops.count("Attention") == layers and ops.count("SkipLayerNormalization") == 2 * layers, ops
    _optimize(exported, "O4", "cpu", tmp_path / "model_O4.onnx")
    graph = onnx.load(str(tmp_path / "model_O4.onnx")).graph
    assert {t.data_type for t in graph.initializer if len(t.dims) == 2} == {onnx.TensorProto.FLOAT16}
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_results_record_the_exporter_and_the_versions_that_made_it():
    from harness.export.onnx import exporter

    made = exporter()
    assert made["exporter"].startswith("torch.onnx.export")
    assert {"torch", "transformers", "sentence-transformers", "onnx"} <= set(made["versions"])
