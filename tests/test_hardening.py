"""The harness used as a careless or hostile user would: concurrent runs, damaged run folders and
files, bad output paths, typos in paths, odd data. Each case is exit 4 with what to fix (or a
warning), never a traceback, and nothing already computed is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATA_DIR

ENV = {**os.environ, "HARNESS_DATA_DIR": str(DATA_DIR), "HF_HUB_OFFLINE": "1"}


def harness(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=env or ENV,
    )


def test_two_runs_into_the_same_out_started_together_get_two_folders(tiny_suite, tmp_path):
    suite = tiny_suite('[[thresholds]]\nmetric = "ndcg@10"\nmin = 0.0\n')
    out = tmp_path / "o"
    env = {**ENV, "HARNESS_CACHE_DIR": str(tmp_path / "cache")}
    procs = [
        harness("run", str(suite), "--out", str(out), "--device", "cpu", "-q", env=env) for _ in range(3)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    folders = sorted(p for p in (out / "tiny").iterdir() if p.is_dir() and not p.is_symlink())
    assert len(folders) == 3, folders
    for folder in folders:
        doc = json.loads((folder / "results.json").read_text())
        assert doc["exit_code"] == 0 and doc["run_id"] == folder.name
        assert [c["status"] for c in doc["candidates"]] == ["passed", "passed"]
        assert (folder / "models" / "tiny-mnrl" / "export" / "onnx" / "model.onnx").is_file()
        assert (folder / "report.html").is_file()
    assert (out / "tiny" / "latest").resolve() in [f.resolve() for f in folders]


def test_a_run_folder_is_claimed_atomically_even_within_one_second(tmp_path):
    """Two sessions that start in the same second pick the same time stamp; ``mkdir`` decides who
    gets it, the other takes the next free suffix."""
    from harness.run.run_dir import claim

    stamp = "20261201-120000"
    first, second, third = (claim(tmp_path / "suite", stamp) for _ in range(3))
    assert [first.name, second.name, third.name] == [stamp, f"{stamp}-2", f"{stamp}-3"]
    assert all(f.is_dir() for f in (first, second, third))


def test_a_second_resume_of_a_folder_in_use_is_refused_naming_the_lock(tiny_suite, run_cli, tmp_path):
    from harness.run.run_dir import RunLock

    suite, out = tiny_suite(), tmp_path / "o"
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q")
    assert code == 0, text
    folder = (out / "tiny" / "latest").resolve()
    lock = RunLock(
        folder
    ).acquire()  # as a running session holds it (flock: another open file, another holder)
    try:
        code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q", "--resume")
    finally:
        lock.release()
    assert code == 4 and ".harness-lock" in text and "another harness run is using this run folder" in text, (
        text
    )
    assert f"pid {os.getpid()}" in text
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q", "--resume")
    assert code == 0, text  # once it is free, the resume goes on


def test_resume_checks_the_files_of_what_it_reuses(tiny_suite, run_cli, tmp_path):
    suite, out = tiny_suite(), tmp_path / "o"
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q")
    assert code == 0, text
    folder = (out / "tiny" / "latest").resolve()
    graph = folder / "models" / "tiny-mnrl" / "export" / "onnx" / "model.onnx"
    graph.unlink()
    weights = folder / "models" / "tiny-baseline" / "export" / "onnx" / "model.onnx"
    weights.write_bytes(weights.read_bytes()[:-10])  # damaged, not deleted: its recorded hash tells
    code, text = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q", "--resume")
    assert code == 0, text
    assert "tiny::tiny-mnrl: --resume: 1 of its files are gone or changed" in text, text
    assert "tiny::tiny-baseline: --resume: 1 of its files are gone or changed" in text, text
    assert graph.is_file()
    from harness.core import records

    assert records.missing(graph.parents[1]) == [] and records.missing(weights.parents[1]) == []
    code, text = run_cli("release", str(folder), "--to", str(tmp_path / "art"))
    assert code == 0, text


def test_a_qrels_header_is_known_by_its_content_not_its_position(tmp_path):
    from harness.builtin.beir import read_qrels

    judgements = "q1\td1\t1\nq2\td2\t2\n"
    for text in (
        judgements,
        "query-id\tcorpus-id\tscore\n" + judgements,
        "qid\tdocid\trel\n" + judgements,
        "\n" + judgements.replace("\n", "\r\n"),
    ):
        (tmp_path / "q.tsv").write_text(text)
        assert read_qrels(tmp_path / "q.tsv").rows() == [("q1", "d1", 1), ("q2", "d2", 2)], text
    from harness.errors import DataError

    (tmp_path / "q.tsv").write_text(judgements + "q3\td3\thigh\n")
    with pytest.raises(DataError, match=r"q\.tsv:3: the score must be an integer, got 'high'"):
        read_qrels(tmp_path / "q.tsv")


def test_every_output_path_is_checked_before_any_work(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (["--out", str(a_file)], f"--out: {a_file} is a file; expected a folder"),
        (["--out", str(a_file / "sub")], f"is under {a_file}, which is a file"),
        (["--out", "/sys/harness-out"], "--out: /sys/harness-out: cannot write there"),
        (["--out", str(tmp_path / "o"), "--junitxml", str(tmp_path)], f"--junitxml: {tmp_path} is a folder"),
        (["--out", str(tmp_path / "o"), "--junitxml", str(a_file / "j.xml")], "--junitxml:"),
    ]
    for extra, message in cases:
        code, text = run_cli("run", str(suite), "--device", "cpu", "-q", *extra)
        assert code == 4 and message in text, (extra, text)
        assert "training" not in text and "BASELINE" not in text  # nothing ran
    assert not list((tmp_path / "o").glob("tiny/*/results.json"))
    code, text = run_cli("release", str(tmp_path), "--to", str(a_file))
    assert code == 4 and f"--to: {a_file} is a file" in text, text
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, text = run_cli("release", str(tmp_path), "--to", str(tmp_path / "full"))
    assert code == 4 and "is not empty" in text, text


@pytest.mark.damaged_results
def test_harness_report_on_a_damaged_results_json_names_the_file(tiny_suite, run_cli, tmp_path):
    code, text = run_cli("run", str(tiny_suite()), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 0, text
    folder = (tmp_path / "o" / "tiny" / "latest").resolve()
    good = (folder / "results.json").read_text()
    for damaged, says in (
        (good[: len(good) // 2], "not valid JSON"),
        ("", "not valid JSON"),
        ("{}", "(top)"),
        ("[1, 2]", "(top)"),
        (good.replace('"candidates": [', '"candidates": [7, '), "candidates/0"),
        (b"\xff\xfe".decode("latin-1"), ""),
    ):
        (folder / "results.json").write_text(damaged)
        code, text = run_cli("report", str(folder))
        assert code == 4 and str(folder / "results.json") in text and says in text, (damaged[:40], text)
        assert "Traceback" not in text
    (folder / "results.json").unlink()
    code, text = run_cli("report", str(folder))
    assert code == 4 and "no such file" in text, text


def test_a_corpus_that_is_not_utf8_is_exit_4_with_file_and_line_before_anything_runs(
    tmp_path, run_cli, tiny_model
):
    from .conftest import write_suite

    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    lines = [json.dumps({"_id": f"d{i}", "text": f"document {i}"}).encode() for i in range(5)]
    lines[3] = b'{"_id": "d3", "text": "caf\xe9"}'  # latin-1, not UTF-8
    (data / "corpus.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (data / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in range(5))
    )
    for split in ("train", "test"):
        (data / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    suite = write_suite(
        tmp_path,
        f'[data]\nsource = "beir"\ndataset = "x"\npath = "{data}"\n'
        f'[[models]]\nname = "tiny"\nbase = "{tiny_model}"\n'
        '[[losses]]\nname = "mnrl"\ntype = "MultipleNegativesRankingLoss"\n',
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 4 and f"{data / 'corpus.jsonl'}:4: not UTF-8 text (byte 0xe9" in text, text
    assert "raised" not in text
    assert not (tmp_path / "o" / "tiny").exists() or not any((tmp_path / "o" / "tiny").iterdir())


def test_identical_train_and_test_judgements_say_so(tmp_path, run_cli, tiny_model):
    from .conftest import write_suite

    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(9))
    )
    (data / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": f"q {i}"}) + "\n" for i in range(9))
    )
    qrels = "".join(f"q{i}\td{i}\t1\n" for i in range(9))
    for split in ("train", "test"):
        (data / "qrels" / f"{split}.tsv").write_text(qrels)
    suite = write_suite(
        tmp_path,
        f'[data]\nsource = "beir"\ndataset = "x"\npath = "{data}"\n'
        f'[[models]]\nname = "tiny"\nbase = "{tiny_model}"\n'
        '[[losses]]\nname = "mnrl"\ntype = "MultipleNegativesRankingLoss"\n',
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 4 and "every one of the 9 'train' queries is also a 'test' query" in text, text
    assert "dev_fraction" not in text


def test_an_explicit_data_path_that_does_not_exist_is_exit_4_from_check_and_run(
    tmp_path, run_cli, tiny_model
):
    from .conftest import write_suite

    suite = write_suite(
        tmp_path,
        '[data]\nsource = "beir"\ndataset = "scifact"\npath = "no/such/folder"\n'
        f'[[models]]\nname = "tiny"\nbase = "{tiny_model}"\n'
        '[[losses]]\nname = "mnrl"\ntype = "MultipleNegativesRankingLoss"\n',
    )
    for command in (
        ["check", str(suite)],
        ["run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q"],
    ):
        code, text = run_cli(*command)
        assert code == 4 and f"{suite}: data.path: no such folder: {tmp_path / 'no/such/folder'}" in text, (
            text
        )
    (tmp_path / "a.jsonl").write_text("")
    suite = write_suite(
        tmp_path,
        '[data]\nsource = "jsonl"\ntrain = "a.jsonl"\ntest = "b.jsonl"\n'
        f'[[models]]\nname = "tiny"\nbase = "{tiny_model}"\n'
        '[[losses]]\nname = "mnrl"\ntype = "MultipleNegativesRankingLoss"\n',
        "j.toml",
    )
    code, text = run_cli("check", str(suite))
    assert code == 4 and "data.test: no such file" in text and "data.train" not in text, text


def test_encode_refuses_duplicate_document_ids(finished_artifact, run_cli, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": i, "text": f"text {n}"}) + "\n" for n, i in enumerate("abcb"))
    )
    out = tmp_path / "e.parquet"
    code, text = run_cli("encode", str(finished_artifact), "--corpus", str(corpus), "--out", str(out), "-q")
    assert code == 4 and "document id 'b' is not unique (it occurs twice)" in text, text
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))
    corpus.write_text("".join(json.dumps({"id": i, "text": f"text {i}"}) + "\n" for i in "ab"))
    assert run_cli("encode", str(finished_artifact), "--corpus", str(corpus), "--out", str(out), "-q")[0] == 0
    code, text = run_cli(
        "encode", str(finished_artifact), "--corpus", str(corpus), "--out", str(out), "--append", "-q"
    )
    assert code == 4 and f"{out} already holds it" in text, text


def test_small_command_line_mistakes_are_usage_errors(finished_artifact, run_cli, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": f"text {i}"}) + "\n" for i in "abc"))
    emb = tmp_path / "e.parquet"
    assert run_cli("encode", str(finished_artifact), "--corpus", str(corpus), "--out", str(emb), "-q")[0] == 0
    for k in ("0", "-5"):
        code, text = run_cli("search", str(emb), str(finished_artifact), "text a", "-k", k)
        assert code == 4 and f"-k: expected a number of results >= 1, got {k}" in text, text
    code, text = run_cli("search", str(emb), str(finished_artifact), "  ")
    assert code == 4 and "the query is empty" in text, text
    code, text = run_cli("search", str(tmp_path / "missing.parquet"), str(finished_artifact), "text a")
    assert code == 4 and "missing.parquet: no such file" in text, text
    code, text = run_cli("encode", str(finished_artifact), "--check", str(tmp_path / "missing.parquet"))
    assert code == 4 and "missing.parquet: no such file" in text, text
    (tmp_path / "empty").mkdir()
    code, text = run_cli("run", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert code == 5 and f"no suite files in {tmp_path / 'empty'}" in text, text
    code, text = run_cli("check", str(tmp_path / "empty"))
    assert code == 5 and f"no suite files in {tmp_path / 'empty'}" in text, text


@pytest.fixture()
def finished_artifact(tiny_suite, run_cli, tmp_path):
    code, text = run_cli("run", str(tiny_suite()), "--out", str(tmp_path / "run"), "--device", "cpu", "-q")
    assert code == 0, text
    code, text = run_cli(
        "release", str(tmp_path / "run" / "tiny" / "latest"), "--to", str(tmp_path / "artifact")
    )
    assert code == 0, text
    return tmp_path / "artifact"


FULL_DISK = """
from harness import hookimpl
from harness.api import EvalResult, Evaluator


class FullDisk(Evaluator):
    name = "fulldisk"

    def metric_names(self, k_values):
        return ["written@1"]

    def evaluate(self, encoder, corpus, split, k_values):
        with open("/dev/full", "w") as f:  # every write to /dev/full fails with ENOSPC, as on a full disk
            f.write("x" * 10)
            f.flush()
        return EvalResult({"written@1": 1.0}, {})


@hookimpl
def harness_register_evaluators(register):
    register(FullDisk())
"""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_stops_the_run_instead_of_training_on(tiny_suite, run_cli, tmp_path):
    plugin = tmp_path / "fulldisk.py"
    plugin.write_text(FULL_DISK)
    suite = tiny_suite(
        '[[losses]]\nname = "sym"\ntype = "MultipleNegativesSymmetricRankingLoss"\n', plugins=(plugin,)
    )
    suite.write_text(
        suite.read_text().replace(
            "k_values = [1, 3, 10]", 'k_values = [1, 3, 10]\nevaluators = ["retrieval", "fulldisk"]'
        )
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 1, text
    assert "No space left on device" in text and "the run stops here" in text and "--resume" in text, text
    assert "training" not in text  # no candidate trained after the baseline hit the full disk
    doc = json.loads(next((tmp_path / "o" / "tiny").glob("*/results.json")).read_text())
    assert [c["name"] for c in doc["candidates"]] == ["tiny-baseline"] and doc["candidates"][0][
        "fatal"
    ] is True
    assert doc["not_run"] == ["tiny-mnrl", "tiny-sym"] and doc["exit_code"] == 1
    assert "0 passed, 0 failed, 1 baseline(s) (1 errored)" in text


def test_a_tiny_test_split_and_empty_documents_are_warned_about_and_dropped(
    tiny_suite, run_cli, tmp_path, pair_files
):
    test = pair_files / "test.jsonl"
    test.write_text(test.read_text().splitlines()[0] + "\n")
    corpus = pair_files / "corpus.jsonl"
    corpus.write_text(json.dumps({"text": "   "}) + "\n" + json.dumps({"text": "w1 w2"}) + "\n")
    suite = tiny_suite(
        data=f'source = "jsonl"\ntrain = "{pair_files / "train.jsonl"}"\ntest = "{test}"\n'
        f'corpus = "{corpus}"\ndev_fraction = 0.2'
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 0, text  # warnings, not errors: no thresholds, so the run passes
    assert "the 'test' split has only 1 query (fewer than 30)" in text, text
    assert "cleaning: empty documents: 1 (dropped)" in text, text  # the cleaning drops it, and says so


CRASHING_SOURCE = """
from harness import hookimpl
from harness.api import PairSource


class Broken(PairSource):
    name = "broken"
    options = {}

    def load(self, options, ctx):
        raise RuntimeError("a bug in the source")


@hookimpl
def harness_register_pair_sources(register):
    register(Broken())
"""


def test_latest_moves_only_to_a_run_that_computed_something(tiny_suite, run_cli, tmp_path):
    out = tmp_path / "o"
    code, text = run_cli("run", str(tiny_suite()), "--out", str(out), "--device", "cpu", "-q")
    assert code == 0, text
    good = (out / "tiny" / "latest").resolve()
    plugin = tmp_path / "broken.py"
    plugin.write_text(CRASHING_SOURCE)
    code, text = run_cli(
        "run",
        str(tiny_suite(data='source = "broken"', plugins=(plugin,))),
        "--out",
        str(out),
        "--device",
        "cpu",
        "-q",
    )
    assert code == 1 and "raised RuntimeError: a bug in the source" in text, text
    runs = [p for p in (out / "tiny").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 2  # the all-error run is kept, for the record ...
    assert (out / "tiny" / "latest").resolve() == good  # ... but latest still points at the run that computed
