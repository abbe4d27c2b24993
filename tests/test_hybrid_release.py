"""A hybrid row shipped end to end: released with its BM25 settings and fusion, encoded with its BM25
index beside the embeddings, checked, and searched in a batch that reproduces the report's metrics."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import HYBRID_REFERENCES

HYBRID = (
    HYBRID_REFERENCES
    + """
[[thresholds]]
metric = "ndcg@10"
min_gain = -1.0
"""
)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, tiny_model):
    """A finished run with hybrid rows, its data as a BEIR folder, and its hybrid row released."""
    from tests.conftest import run_in_process, tiny_suite_factory, write_pair_files

    tmp = tmp_path_factory.mktemp("hybrid")
    suite = tiny_suite_factory(tmp, tiny_model, write_pair_files(tmp))(HYBRID)
    code, text = run_in_process(tmp, "run", str(suite), "--out", str(tmp / "out"), "--device", "cpu", "-q")
    assert code == 0, text
    code, text = run_in_process(tmp, "data", str(suite), "--export", str(tmp / "beir"))
    assert code == 0, text
    run = (tmp / "out" / "tiny" / "latest").resolve()
    code, text = run_in_process(
        tmp, "release", str(run), "--to", str(tmp / "art"), "--candidate", "tiny-mnrl+bm25"
    )
    assert code == 0, text
    return tmp, run


def _cli(tmp, *args):
    from tests.conftest import run_in_process

    return run_in_process(tmp, *args)


def test_a_hybrid_release_serves_the_rows_ranking_and_reproduces_its_metrics(shipped):
    tmp, run = shipped
    doc = json.loads((run / "results.json").read_text())
    row = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl+bm25")
    art = tmp / "art"
    manifest = json.loads((art / "harness-artifact.json").read_text())
    assert manifest["candidate"] == "tiny-mnrl+bm25" and manifest["hybrid"]["dense"] == "tiny-mnrl"
    assert manifest["hybrid"]["bm25"] == row["fusion"]["bm25"]
    assert manifest["hybrid"]["fusion"]["method"] == row["fusion"]["method"]
    assert json.loads((art / "hybrid.json").read_text()) == manifest["hybrid"]
    card = (art / "README.md").read_text()
    assert "fused with bm25" in card and row["fusion"]["chosen_by"] in card
    # the same dense model released alone has another fingerprint: a hybrid ranks with BM25 too
    code, text = _cli(tmp, "release", str(run), "--to", str(tmp / "dense"), "--candidate", "tiny-mnrl")
    assert code == 0, text
    dense = json.loads((tmp / "dense" / "harness-artifact.json").read_text())
    assert dense["fingerprint"] != manifest["fingerprint"] and dense["hybrid"] is None

    beir = tmp / "beir" / "tiny"
    emb = tmp / "emb.parquet"
    code, text = _cli(
        tmp, "encode", str(art), "--corpus", str(beir / "corpus.jsonl"), "--out", str(emb), "-q"
    )
    assert code == 0 and "BM25 index" in text, text
    assert (tmp / "emb.parquet.bm25" / "harness-bm25.json").is_file()
    code, text = _cli(tmp, "encode", str(art), "--check", str(emb), "--corpus", str(beir / "corpus.jsonl"))
    assert code == 0, text

    out = tmp / "m.json"
    code, text = _cli(
        tmp, "search", str(emb), str(art), "--queries", str(beir / "queries.jsonl"),
        "--qrels", str(beir / "qrels" / "test.tsv"), "--json", str(out),
        "--trec", str(tmp / "run.trec"), "--jsonl", str(tmp / "run.jsonl"),
    )  # fmt: skip
    assert code == 0, text
    got = json.loads(out.read_text())
    assert got["queries"] == len(row["per_query"])
    for metric in ("ndcg@10", "recall@10", "mrr@10"):
        assert got["metrics"][metric] == pytest.approx(row["metrics"][metric], abs=0.002), metric
    assert f"ndcg@10\t{got['metrics']['ndcg@10']:.4f}" in text
    trec = (tmp / "run.trec").read_text().splitlines()
    first = trec[0].split()
    assert len(first) == 6 and first[1] == "Q0" and first[3] == "1"
    lines = [json.loads(x) for x in (tmp / "run.jsonl").read_text().splitlines()]
    assert len(lines) == sum(1 for _ in (beir / "queries.jsonl").open()) and len(lines[0]["results"]) == 10
    # one query as the report ranked it: its top 10 are the row's
    qid = next(iter(row["rankings"]))
    assert [r["id"] for r in next(x for x in lines if x["query_id"] == qid)["results"]] == row["rankings"][
        qid
    ]


def test_check_refuses_an_index_of_another_artifact_or_corpus(shipped):
    tmp, run = shipped
    art, beir = tmp / "art", tmp / "beir" / "tiny"
    corpus = beir / "corpus.jsonl"
    emb = tmp / "c1.parquet"
    assert _cli(tmp, "encode", str(art), "--corpus", str(corpus), "--out", str(emb), "-q")[0] == 0
    # another corpus: the first half of the documents
    half = tmp / "half.jsonl"
    docs = corpus.read_text().splitlines()
    half.write_text("\n".join(docs[: len(docs) // 2]) + "\n")
    other = tmp / "c2.parquet"
    assert _cli(tmp, "encode", str(art), "--corpus", str(half), "--out", str(other), "-q")[0] == 0
    code, text = _cli(tmp, "encode", str(art), "--check", str(emb), "--corpus", str(half))
    assert code == 1 and "made from another corpus" in text, text
    # the BM25 index of the other corpus put beside the embeddings
    shutil.rmtree(tmp / "c1.parquet.bm25")
    shutil.copytree(tmp / "c2.parquet.bm25", tmp / "c1.parquet.bm25")
    code, text = _cli(tmp, "encode", str(art), "--check", str(emb))
    assert code == 1 and "BM25 index made from another corpus" in text, text
    code, text = _cli(tmp, "search", str(emb), str(art), "some words")
    assert code == 1 and "another corpus" in text, text
    # a BM25 index made by another artifact (the baseline's hybrid row)
    code, text = _cli(
        tmp, "release", str(run), "--to", str(tmp / "art0"), "--candidate", "tiny-baseline+bm25"
    )
    assert code == 0, text
    base = tmp / "c3.parquet"
    assert _cli(tmp, "encode", str(tmp / "art0"), "--corpus", str(corpus), "--out", str(base), "-q")[0] == 0
    shutil.rmtree(tmp / "c1.parquet.bm25")
    shutil.copytree(tmp / "c3.parquet.bm25", tmp / "c1.parquet.bm25")
    code, text = _cli(tmp, "encode", str(art), "--check", str(emb))
    assert code == 1 and "BM25 index made by another artifact" in text, text
    # and the embeddings of another artifact
    code, text = _cli(tmp, "encode", str(art), "--check", str(base))
    assert code == 1 and "made by another model" in text, text
    shutil.rmtree(tmp / "c1.parquet.bm25")
    code, text = _cli(tmp, "encode", str(art), "--check", str(emb))
    assert code == 1 and "no BM25 index" in text, text


ONE = '{"_id": "a", "text": "alpha"}\n'
HEAD = "query-id\tcorpus-id\tscore\n"


@pytest.mark.parametrize(
    "queries, qrels, says",
    [
        ('{"text": "alpha beta"}\n', None, "q.jsonl:1: no query id"),
        (ONE + '{"_id": "b", "text": "  "}\n', None, "q.jsonl:2: query 'b' is empty"),
        (ONE, HEAD + "a\tnot-a-doc\t1\n", "r.tsv:2: document id 'not-a-doc'"),
        (ONE, HEAD + "zz\t{doc}\t1\n", "r.tsv:2: query id 'zz'"),
        (ONE, "a {doc}\n", "r.tsv:1: expected 'query-id corpus-id score'"),
    ],
)
def test_bad_batch_input_exits_4_naming_the_file_and_line(shipped, queries, qrels, says):
    tmp, _ = shipped
    art, corpus = tmp / "art", tmp / "beir" / "tiny" / "corpus.jsonl"
    emb = tmp / "bad.parquet"
    if not emb.is_file():
        assert _cli(tmp, "encode", str(art), "--corpus", str(corpus), "--out", str(emb), "-q")[0] == 0
    doc = json.loads(corpus.read_text().splitlines()[0])["_id"]
    (tmp / "q.jsonl").write_text(queries)
    args = ["search", str(emb), str(art), "--queries", str(tmp / "q.jsonl")]
    if qrels is not None:
        (tmp / "r.tsv").write_text(qrels.replace("{doc}", doc))
        args += ["--qrels", str(tmp / "r.tsv")]
    code, text = _cli(tmp, *args)
    assert code == 4 and says in text, text
