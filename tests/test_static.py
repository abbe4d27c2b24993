"""Static candidates (``type = "static"``) on the tiny data: distilled with Model2Vec from the base
(its baseline) or from a tuned candidate, fine-tuned as a StaticEmbedding, evaluated in numpy,
gated, released, encoded and searched; each candidate's ``kind`` in results.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_in_process, tiny_suite_factory, write_pair_files

STATIC = """
[[models]]
name = "tinystatic"
base = "{base}"
type = "static"
pca_dims = 16
learning_rate = 0.05
[[models]]
name = "fromtuned"
base = "{base}"
type = "static"
pca_dims = 16
distill_from = "tiny-mnrl"
learning_rate = 0.05
[[thresholds]]
metric = "ndcg@10"
min_gain = -1.0
"""


@pytest.fixture(scope="module")
def static_run(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("static")
    pairs = write_pair_files(tmp)
    suite = tiny_suite_factory(tmp, tiny_model, pairs)(STATIC.format(base=tiny_model))
    code, text = run_in_process(tmp, "run", str(suite), "--out", str(tmp / "out"), "--device", "cpu")
    assert code == 0, text
    run = tmp / "out" / "tiny" / "latest"
    return tmp, run, json.loads((run / "results.json").read_text()), text, pairs


def test_static_candidates_are_distilled_trained_and_evaluated_in_numpy(static_run):
    tmp, run, doc, text, _ = static_run
    by = {c["name"]: c for c in doc["candidates"]}
    assert by["tiny-mnrl"]["kind"] == "transformer" and by["tiny-baseline"]["kind"] == "transformer"
    for name in ("tinystatic-baseline", "tinystatic-mnrl", "fromtuned-baseline", "fromtuned-mnrl"):
        c = by[name]
        assert c["kind"] == "static" and c["variant"] == "static", name
        assert c["encoder"]["format"] == "static" and c["encoder"]["provider"] == "numpy (CPU)"
        assert c["encoder"]["dimensions"] == 16 and c["export_check"]["min_cosine"] > 0.999
    assert by["tinystatic-baseline"]["static"]["from"] == "base"
    assert by["fromtuned-mnrl"]["static"]["from"] == "tiny-mnrl"
    assert "static model distilled from base with Model2Vec" in text


def test_a_static_candidate_is_released_encoded_and_searched(static_run, tmp_path):
    from harness.encode.static import StaticEncoder

    tmp, run, doc, _, pairs = static_run
    art = tmp_path / "art"
    code, text = run_in_process(tmp, "release", str(run), "--candidate", "tinystatic-mnrl", "--to", str(art))
    assert code == 0, text
    manifest = json.loads((art / "harness-artifact.json").read_text())
    assert manifest["kind"] == "static" and manifest["engine"] == "numpy"
    assert (art / "static" / "model.safetensors").is_file() and not (art / "onnx").exists()
    assert "static embedding model" in (art / "README.md").read_text()
    rows = [json.loads(x) for x in (pairs / "test.jsonl").read_text().splitlines()]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": r["document"]}) + "\n" for i, r in enumerate(rows))
    )
    out = tmp_path / "emb.parquet"
    code, text = run_in_process(tmp, "encode", str(art), "--corpus", str(corpus), "--out", str(out), "-q")
    assert code == 0 and f"{len(rows)} vectors" in text, text
    assert run_in_process(tmp, "encode", str(art), "--check", str(out))[0] == 0
    # the vectors are the run's own static model's (what the report measured)
    import polars as pl

    stored = np.array(pl.read_parquet(out)["vector"].to_list(), dtype=np.float32)
    evaluated = StaticEncoder(run / "models" / "tinystatic-mnrl" / "export" / "static")
    assert np.allclose(stored, evaluated.encode_documents([r["document"] for r in rows]), atol=1e-5)
    # a transformer's artifact is another embedding space
    other = tmp_path / "other"
    assert run_in_process(tmp, "release", str(run), "--candidate", "tiny-mnrl", "--to", str(other))[0] == 0
    code, text = run_in_process(tmp, "encode", str(other), "--check", str(out))
    assert code == 1 and "made by another model" in text
    hits = 0
    for i, r in enumerate(rows[:10]):
        code, text = run_in_process(tmp, "search", str(out), str(art), r["query"], "-k", "3")
        assert code == 0 and len(text.strip().splitlines()) == 3, text
        hits += f"d{i}" in text
    assert hits >= 3, hits  # the tuned static model finds its documents


def test_the_speed_against_plain_sentence_transformers_is_measured_in_the_run(static_run):
    _, _, doc, text, _ = static_run
    by = {c["name"]: c for c in doc["candidates"]}
    plain = by["tinystatic-baseline"]["plain_st"]
    assert plain["docs_per_s"] > 0 and "sentence-transformers" in plain["by"]
    for name in ("tinystatic-mnrl", "tiny-mnrl"):
        s = by[name]["speed"]
        assert s["x_plain_st"] == pytest.approx(s["docs_per_s"] / s["plain_st_docs_per_s"], rel=0.01)
    assert "x plain sentence-transformers fp32" in text


def test_the_quality_speed_plot_has_every_kind_and_its_frontier():
    from harness.report.plots import frontier, quality_vs_speed, speed_points

    def variant(name, quality, speed, shipped=False):
        return {"variant": name, "shipped": shipped, "metrics": {"ndcg@10": quality, "docs_per_s": speed}}

    def row(name, kind, quality, speed, variants, baseline=False):
        metrics = {"ndcg@10": quality, "docs_per_s": speed}
        return {"name": name, "baseline": baseline, "kind": kind, "metrics": metrics, "variants": variants}

    rows = [
        row("t-baseline", "transformer", 0.60, 20.0, [variant("fp32", 0.60, 20.0)], baseline=True),
        row(
            "t-mnrl",
            "transformer",
            0.70,
            30.0,
            [variant("fp32", 0.70, 20.0), variant("int8", 0.695, 30.0, True)],
        ),
        row("s-mnrl", "static", 0.65, 3000.0, [variant("static", 0.65, 3000.0, True)]),
        {
            "name": "t-mnrl+bm25",
            "baseline": False,
            "hybrid_of": {"dense": "t-mnrl", "reference": "hybrid", "of": "bm25"},
            "metrics": {"ndcg@10": 0.75},
        },
    ]
    refs = [{"name": "bm25", "type": "bm25", "metrics": {"ndcg@10": 0.68}, "docs_per_s": 6000.0}]
    pts = speed_points(rows, refs, "ndcg@10")
    kinds = {p["label"]: p["kind"] for p in pts}
    assert kinds == {
        "t-baseline": "baseline", "t-mnrl [fp32]": "transformer", "t-mnrl [int8]": "transformer",
        "s-mnrl [static]": "static", "t-mnrl+bm25 [hybrid]": "hybrid", "bm25 [BM25 index]": "bm25",
    }  # fmt: skip
    hybrid = next(p for p in pts if p["kind"] == "hybrid")
    assert hybrid["docs_per_s"] == pytest.approx(1 / (1 / 30 + 1 / 6000))  # both read every document
    edge = [pts[i]["label"] for i in frontier([(p["docs_per_s"], p["quality"]) for p in pts])]
    # the static model is slower than BM25 and worse; int8 a little faster than its hybrid
    assert edge == ["bm25 [BM25 index]", "t-mnrl [int8]", "t-mnrl+bm25 [hybrid]"]
    svg = str(quality_vs_speed(rows, "ndcg@10", refs))
    assert svg.count('class="point') == 6 and 'id="frontier"' in svg and "kind-static" in svg


@pytest.mark.parametrize(
    "extra,message",
    [
        ("keep_layers = 1\n", "models[1].type: a static model has no transformer layers"),
        ('type = "dense"\n', "models[1].type: expected one of 'transformer', 'static'"),
        ("pca_dims = 0\n", "models[1].pca_dims"),
    ],
)
def test_bad_static_settings_are_exit_4(tiny_suite, run_cli, extra, message):
    body = '[[models]]\nname = "s"\nbase = "x"\n' + ("" if "type" in extra else 'type = "static"\n') + extra
    code, out = run_cli("check", str(tiny_suite(body)))
    assert code == 4 and message in out, out
