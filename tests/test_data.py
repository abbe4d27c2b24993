"""Pair sources and splitting: BEIR reading, errors that name file and line, the dev carve."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from harness.api import LoadContext
from harness.builtin.beir import BeirSource, load_beir_folder
from harness.data.prepare import prepare
from harness.errors import DataError
from harness.suite.schema import DataTable

from .conftest import DATA_DIR


def beir_folder(root: Path, corpus_lines: list[str] | None = None) -> Path:
    d = root / "toy"
    (d / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": f"title {i}" if i % 2 else "", "text": f"text {i}"} for i in range(10)]
    (d / "corpus.jsonl").write_text("\n".join(corpus_lines or [json.dumps(x) for x in docs]) + "\n")
    (d / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in range(10))
    )
    (d / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(7))
    )
    (d / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(7, 10))
    )
    return d


def test_beir_folder_joins_titles_and_reads_splits(tmp_path):
    data = load_beir_folder(beir_folder(tmp_path), ["train", "test"])
    texts = dict(data.corpus.iter_rows())
    assert texts["d0"] == "text 0" and texts["d1"] == "title 1 text 1"
    assert data.split("train").queries.height == 7 and data.split("test").queries.height == 3
    assert len(data.fingerprint) == 16
    with pytest.raises(DataError, match="split 'dev' not found"):
        data.split("dev")


def test_malformed_json_line_names_file_and_line(tmp_path):
    d = beir_folder(tmp_path, ['{"_id": "d0", "text": "a"}', '{"_id": "d1", "text": '])
    with pytest.raises(DataError, match=r"corpus.jsonl:2: malformed JSON line"):
        load_beir_folder(d, ["train"])


def test_missing_split_lists_the_available_ones(tmp_path):
    with pytest.raises(
        DataError, match=r"qrels/dev.tsv: missing; this dataset has the splits \['test', 'train'\]"
    ):
        load_beir_folder(beir_folder(tmp_path), ["dev"])


def test_offline_without_data_says_where_it_looked(tmp_path):
    ctx = LoadContext(tmp_path / "data", tmp_path, tmp_path / "cache")
    opts = {"dataset": "nosuchset", "path": None, "url": "http://127.0.0.1:9/{dataset}.zip"}
    with pytest.raises(DataError) as e:
        BeirSource().load(opts, ctx)
    msg = str(e.value)
    assert (
        str(tmp_path / "data" / "nosuchset") in msg and str(tmp_path / "cache" / "beir" / "nosuchset") in msg
    )
    assert "http://127.0.0.1:9/nosuchset.zip failed" in msg


def test_dev_is_carved_from_train_deterministically_and_test_is_untouched(tmp_path):
    data = load_beir_folder(beir_folder(tmp_path), ["train", "test"])
    cfg = DataTable(source="beir", dev_fraction=0.3)
    a, b = prepare(data, cfg), prepare(data, cfg)
    assert a.dev.queries["id"].to_list() == b.dev.queries["id"].to_list()
    assert len(a.dev) == 2 and len(a.train) == 5 and len(a.test) == 3
    assert not set(a.dev.queries["id"]) & set(a.train.queries["id"])
    anchors, positives = a.train_pairs()
    assert len(anchors) == 5 and all(p.startswith("t") for p in positives)


def test_a_refit_moves_every_dev_judgement_into_train_and_leaves_test_alone(tmp_path):
    data = prepare(
        load_beir_folder(beir_folder(tmp_path), ["train", "test"]), DataTable(source="beir", dev_fraction=0.3)
    )
    both = data.with_dev_in_train()
    assert len(both.dev) == 0 and both.dev.qrels.height == 0 and len(both.train) == 7
    assert sorted(both.train.queries["id"]) == sorted(
        data.train.queries["id"].to_list() + data.dev.queries["id"].to_list()
    )
    assert both.train.qrels.height == data.train.qrels.height + data.dev.qrels.height
    assert both.test is data.test and both.corpus is data.corpus and both.fingerprint != data.fingerprint
    assert len(both.train_pairs()[0]) == 7


def test_queries_in_train_and_test_are_dropped_from_training(tmp_path):
    d = beir_folder(tmp_path)
    with (d / "qrels" / "train.tsv").open("a") as f:
        f.write("q8\td8\t1\n")
    p = prepare(load_beir_folder(d, ["train", "test"]), DataTable(source="beir", dev_fraction=0.0))
    assert "q8" not in p.train.queries["id"].to_list()
    assert any("in both 'train' and 'test'" in w for w in p.warnings)


def test_judgements_of_unknown_documents_are_an_error(tmp_path):
    d = beir_folder(tmp_path)
    with (d / "qrels" / "test.tsv").open("a") as f:
        f.write("q9\tnot-a-doc\t1\n")
    with pytest.raises(DataError, match="qrels of split 'test' name 1 documents that do not exist"):
        prepare(load_beir_folder(d, ["train", "test"]), DataTable(source="beir"))


def test_every_data_error_is_reported_at_once(tmp_path):
    docs = [{"_id": f"d{i % 8}", "title": "", "text": f"text {i}"} for i in range(10)]  # d0, d1 twice
    d = beir_folder(tmp_path, [json.dumps(x) for x in docs])
    with (d / "queries.jsonl").open("a") as f:
        f.write(json.dumps({"_id": "q3", "text": "again"}) + "\n")
    with (d / "qrels" / "train.tsv").open("a") as f:
        f.write("ghost-1\td1\t1\nghost-2\td2\t1\nghost-3\td3\t1\nghost-4\td4\t1\n")
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DataError) as err:
        prepare(load_beir_folder(d, ["train", "test"]), DataTable(source="beir"))
    messages = err.value.messages
    assert "2 document ids occur more than once (e.g. 'd0', 'd1')" in messages
    assert "1 query ids occur more than once (e.g. 'q3')" in messages
    assert (
        "qrels of split 'train' name 4 queries that do not exist (e.g. 'ghost-1', 'ghost-2', 'ghost-3', ...)"
        in messages
    )
    assert "split 'test' has no queries with a relevant document" in messages


def test_test_documents_that_are_training_positives_are_a_warning(tmp_path):
    d = beir_folder(tmp_path)
    with (d / "qrels" / "train.tsv").open("a") as f:
        f.write("q1\td8\t1\n")  # d8 is relevant to test query q8
    data = prepare(load_beir_folder(d, ["train", "test"]), DataTable(source="beir", dev_fraction=0.0))
    assert any(
        "1 documents relevant to 'test' queries are also training positives (e.g. 'd8')" in w
        for w in data.warnings
    )


@pytest.mark.integration
def test_real_scifact_counts():
    data = load_beir_folder(DATA_DIR / "scifact", ["train", "test"])
    assert data.corpus.height == 5183
    p = prepare(data, DataTable(source="beir", dev_fraction=0.15))
    assert len(p.test) == 300 and p.test.qrels.filter(pl.col("score") > 0).height == 339
    # 809 train claims, four of them the text of another claim (case and spacing aside): two repeat a
    # train claim (merged), two a test claim (merged, then dropped from training as a leak)
    assert p.cleaning["merged_queries"]["count"] == 4
    assert any("2 queries are in both 'train' and 'test'" in w for w in p.warnings)
    assert len(p.train) + len(p.dev) == 809 - 4
