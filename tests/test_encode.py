"""ONNX export and onnxruntime encoding on the tiny model: fidelity, provider checks, pooling."""

from __future__ import annotations

import numpy as np
import pytest

from harness.encode import OnnxEncoder, pool, read_st_folder
from harness.errors import CandidateError
from harness.export import check_export, export_onnx

from .conftest import synthetic_pairs


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    return export_onnx(tiny_model, tmp_path_factory.mktemp("export") / "export")


def test_export_encodes_like_torch(tiny_model, exported):
    texts = [p["document"] for p in synthetic_pairs(40, 5)]
    enc = OnnxEncoder(exported, "cpu", batch_size=7)
    assert enc.provider == "CPUExecutionProvider"
    assert enc.describe()["format"] == "onnx" and enc.max_seq_length == 64
    result = check_export(tiny_model, enc, texts, "cpu", enc.max_seq_length, 0.999)
    assert result["min_cosine"] > 0.9999
    vecs = enc.encode_documents(texts)
    assert vecs.shape == (40, 32) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)


def test_a_different_model_fails_the_export_check(exported, tmp_path):
    from .conftest import _tiny_model

    other = _tiny_model(tmp_path, seed=1)  # same architecture, other weights
    enc = OnnxEncoder(exported, "cpu")
    with pytest.raises(CandidateError, match="differs from the torch model"):
        check_export(other, enc, ["what is w1 w2", "the w3 of w4"], "cpu", 64, 0.999)


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
    with pytest.raises(CandidateError, match="CUDAExecutionProvider but the session runs on CPUExecutionProvider"):
        OnnxEncoder(exported, "cuda")


@pytest.mark.gpu
def test_cuda_provider_on_a_gpu(exported):
    enc = OnnxEncoder(exported, "cuda")
    assert enc.provider == "CUDAExecutionProvider"


def test_pooling_modes():
    h = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    assert pool(h, mask, "cls").tolist() == [[0, 1], [6, 7]]
    assert pool(h, mask, "mean").tolist() == [[1, 2], [8, 9]]
    assert pool(h, mask, "max").tolist() == [[2, 3], [10, 11]]
    assert pool(h, mask, "lasttoken").tolist() == [[2, 3], [10, 11]]


def test_reads_sentence_transformers_folder(tiny_model):
    info = read_st_folder(tiny_model)
    assert info == {"pooling": "mean", "normalize": True, "max_seq_length": 64, "similarity": "cosine",
                    "include_prompt": True}
