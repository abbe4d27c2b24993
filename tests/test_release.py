"""Release a candidate, encode a corpus with it, refuse to mix embedding spaces, search."""

from __future__ import annotations

import json

import pytest


@pytest.fixture()
def finished_run(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(
        '[[losses]]\nname = "sym"\ntype = "MultipleNegativesSymmetricRankingLoss"\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin = 5.0\ncandidates = ["*-sym"]\n',
        export='variants = ["fp32", "int8"]\nship = "int8"\nmax_drop = 0.5\n',
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "out"), "--device", "cpu", "-q")
    assert code == 1, text  # tiny-sym fails its gate, tiny-mnrl passes and is shipped
    return (tmp_path / "out" / "tiny" / "latest").resolve()


def test_release_encode_check_search(finished_run, run_cli, tmp_path, pair_files):
    from harness.ship.index import file_fingerprint

    art = tmp_path / "artifact"
    code, text = run_cli("release", str(finished_run), "--to", str(art))
    assert code == 0, text
    doc = json.loads((finished_run / "results.json").read_text())
    manifest = json.loads((art / "harness-artifact.json").read_text())
    cand = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl")
    assert manifest["candidate"] == doc["shipped"] == "tiny-mnrl" and not manifest["forced"]
    assert manifest["metrics"] == cand["metrics"] and manifest["gates"] == cand["gates"]
    card = (art / "README.md").read_text()
    assert f"| ndcg@10 | {cand['metrics']['ndcg@10']:.4f} |" in card
    assert f"{cand['comparison']['baseline']['ndcg@10']['gain']:+.4f}" in card
    assert (art / "sentence-transformers" / "model.safetensors").is_file()
    # the shipped variant, int8, is the artifact's only graph
    from harness.core.variants import VARIANTS

    assert manifest["variant"] == cand["variant"] == "int8" and [
        p.name for p in (art / "onnx").iterdir()
    ] == ["model.onnx"]
    int8 = finished_run / "models" / "tiny-mnrl" / "export" / "onnx" / VARIANTS["int8"].file()
    assert (art / "onnx" / "model.onnx").read_bytes() == int8.read_bytes()

    corpus = tmp_path / "corpus.jsonl"
    rows = [json.loads(line) for line in (pair_files / "test.jsonl").read_text().splitlines()]
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": r["document"]}) + "\n" for i, r in enumerate(rows))
    )
    out = tmp_path / "emb.parquet"
    code, text = run_cli("encode", str(art), "--corpus", str(corpus), "--out", str(out), "-q")
    assert code == 0 and "20 vectors" in text
    assert file_fingerprint(out) == manifest["fingerprint"]
    code, text = run_cli("encode", str(art), "--check", str(out))
    assert code == 0

    # the baseline's export is another model: --check fails, appending is refused, search refuses
    baseline = finished_run / "models" / "tiny-baseline" / "export"
    code, text = run_cli("encode", str(baseline), "--check", str(out))
    assert code == 1 and "made by another model" in text
    code, text = run_cli(
        "encode", str(baseline), "--corpus", str(corpus), "--out", str(out), "--append", "-q"
    )
    assert code == 1 and "mixing embedding spaces" in text
    code, text = run_cli("encode", str(art), "--corpus", str(corpus), "--out", str(out), "-q")
    assert code == 4 and "use --append" in text
    code, text = run_cli("encode", str(art), "--corpus", str(corpus), "--out", str(out), "--append", "-q")
    assert code == 4 and "already holds it" in text  # the same ids again: search would return each twice
    more = tmp_path / "more.jsonl"
    more.write_text(
        "".join(json.dumps({"id": f"e{i}", "text": r["document"]}) + "\n" for i, r in enumerate(rows))
    )
    code, text = run_cli("encode", str(art), "--corpus", str(more), "--out", str(out), "--append", "-q")
    assert code == 0 and "40 vectors" in text

    code, text = run_cli("search", str(out), str(art), rows[3]["query"], "-k", "3")
    assert code == 0 and len(text.strip().splitlines()) == 3
    code, text = run_cli("search", str(out), str(baseline), rows[3]["query"])
    assert code == 1


def test_search_is_exact(finished_run, tmp_path, pair_files):
    import numpy as np

    from harness.encode.encoder import OnnxEncoder
    from harness.ship.index import encode_corpus, search
    from harness.ship.release import release

    art = tmp_path / "a"
    release(finished_run, art)
    rows = [json.loads(line) for line in (pair_files / "train.jsonl").read_text().splitlines()]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"_id": str(i), "title": "", "text": r["document"]}) + "\n" for i, r in enumerate(rows)
        )
    )
    import harness.ship.index as index

    index.CHUNK, old = 7, index.CHUNK  # several row groups
    try:
        encode_corpus(art, corpus, tmp_path / "e.parquet")
    finally:
        index.CHUNK = old
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "e.parquet").num_row_groups == 12  # 80 documents, 7 a chunk
    enc = OnnxEncoder(art, "cpu")
    q = enc.encode_queries([rows[0]["query"]])[0]
    d = enc.encode_documents([r["document"] for r in rows])
    want = [str(i) for i in np.argsort(-(d @ q), kind="stable")[:5]]
    doc_ids, top, _ = search(tmp_path / "e.parquet", art, [rows[0]["query"]], 5)
    assert [doc_ids[i] for i in top[0]] == want


def test_release_refuses_a_failed_candidate_unless_forced(finished_run, run_cli, tmp_path):
    code, text = run_cli("release", str(finished_run), "--to", str(tmp_path / "x"), "--candidate", "tiny-sym")
    assert code == 1 and "did not pass its gates" in text and not (tmp_path / "x").exists()
    code, text = run_cli(
        "release", str(finished_run), "--to", str(tmp_path / "x"), "--candidate", "tiny-sym", "--force"
    )
    assert code == 0 and "FORCED" in text
    assert "Released with --force" in (tmp_path / "x" / "README.md").read_text()
    code, text = run_cli(
        "release", str(finished_run), "--to", str(tmp_path / "y"), "--candidate", "tiny-baseline"
    )
    assert code == 4 and "not a candidate of this run" in text
