"""The three domain plugins (plugins/conala.py, dictd.py, tatqa.py): their pair sources on the real
data and on files made here, their evaluators' arithmetic, their registration, one suite end to end."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from harness.api import Encoder, LoadContext, Split
from harness.errors import DataError

from .conftest import DATA_DIR

conala = pytest.importorskip("harness_plugins.conala")
dictd = pytest.importorskip("harness_plugins.dictd")
tatqa = pytest.importorskip("harness_plugins.tatqa")

needs_data = pytest.mark.skipif(not (DATA_DIR / "conala").is_dir(), reason=f"no real data at {DATA_DIR}")


def ctx(tmp_path, data_dir=DATA_DIR) -> LoadContext:
    return LoadContext(data_dir, tmp_path, tmp_path / "cache")


class BagOfWords(Encoder):
    """Texts as normalised word-count vectors: a real, transparent encoder for checking an
    evaluator's arithmetic on rankings one can work out by hand."""

    def __init__(self, texts):
        words = sorted({w for t in texts for w in t.lower().split()})
        self.index = {w: i for i, w in enumerate(words)}

    def _encode(self, texts):
        out = np.zeros((len(texts), len(self.index)), np.float32)
        for r, t in enumerate(texts):
            for w in t.lower().split():
                if w in self.index:
                    out[r, self.index[w]] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    encode_queries = encode_documents = _encode


def split(queries: dict[str, str], qrels: list[tuple[str, str]]) -> Split:
    return Split(
        "test",
        pl.DataFrame({"id": list(queries), "text": list(queries.values())}),
        pl.DataFrame(
            {"query_id": [q for q, _ in qrels], "doc_id": [d for _, d in qrels], "score": [1] * len(qrels)}
        ),
    )


def test_harness_plugins_lists_the_three_domains(run_cli):
    code, out = run_cli("plugins")
    assert code == 0
    for line in (
        "conala (entry point)",
        "pair source conala:",
        "evaluator code:",
        "dictd (entry point)",
        "pair source dictd:",
        "evaluator expansion:",
        "tatqa (entry point)",
        "pair source tatqa:",
        "evaluator evidence:",
    ):
        assert line in out


# --- dictd -----------------------------------------------------------------------------------------


def b64(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    digits = ""
    while True:
        digits = alphabet[n % 64] + digits
        n //= 64
        if not n:
            return digits


def write_dictd(folder: Path, name: str, entries: list[tuple[str, str]]) -> None:
    """A dictd dictionary as dictfmt writes one: metadata entry, then one entry per headword."""
    data, index = b"", []
    for head, definition in [("00-database-short", "A test dictionary")] + entries:
        body = f"{head}\n   {definition}\n".encode()
        index.append(f"{head.lower().replace('-', '')}\t{b64(len(data))}\t{b64(len(body))}")
        data += body
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.index").write_text("\n".join(index) + "\n")
    (folder / f"{name}.dict.dz").write_bytes(gzip.compress(data))


ENTRIES = [(f"A{i}B", f"Alpha {i} Bravo (NET)") for i in range(40)] + [("A0B", "Another Zero Bee [storage]")]


def test_dictd_reads_any_dictionary_and_splits_by_headword(tmp_path):
    write_dictd(tmp_path / "jargon", "jargon", ENTRIES)
    data = dictd.Dictd().load(
        {"dictionary": "jargon", "path": None, "holdout": 0.25}, ctx(tmp_path, tmp_path)
    )
    assert data.corpus.height == 41 and data.queries.height == 40  # metadata left out; A0B is one query
    assert "00-database-short" not in data.queries["text"].to_list()
    a0b = data.queries.filter(pl.col("text") == "A0B")["id"][0]
    both = pl.concat(list(data.qrels.values()))
    assert both.filter(pl.col("query_id") == a0b).height == 2  # both of its entries are relevant
    train_q, test_q = (set(data.qrels[s]["query_id"]) for s in ("train", "test"))
    assert test_q and train_q and not train_q & test_q
    # the split depends on the headword only: a bigger dictionary keeps every old headword's side
    write_dictd(tmp_path / "more", "jargon", ENTRIES + [("ZZZ", "Zig Zag Zig")])
    more = dictd.Dictd().load(
        {"dictionary": "jargon", "path": str(tmp_path / "more"), "holdout": 0.25}, ctx(tmp_path, None)
    )
    text = dict(zip(more.queries["id"], more.queries["text"]))
    assert {t for q, t in text.items() if q in set(more.qrels["test"]["query_id"])} - {"ZZZ"} == {
        t for q, t in zip(data.queries["id"], data.queries["text"]) if q in test_q
    }


def test_dictd_errors_name_the_file_and_what_to_install(tmp_path):
    with pytest.raises(DataError, match=r"apt-get install dict-nosuch"):
        dictd.Dictd().load({"dictionary": "nosuch", "path": None, "holdout": 0.2}, ctx(tmp_path, tmp_path))
    write_dictd(tmp_path / "bad", "bad", ENTRIES)
    index = tmp_path / "bad" / "bad.index"
    index.write_text(index.read_text() + "broken line without tabs\n")
    with pytest.raises(DataError, match=r"bad\.index:43: expected 'headword<TAB>offset<TAB>length'"):
        dictd.Dictd().load(
            {"dictionary": "bad", "path": str(tmp_path / "bad"), "holdout": 0.2}, ctx(tmp_path)
        )


@needs_data
def test_vera_as_shipped_by_debian():
    entries = dictd.read_dictd(DATA_DIR / "vera" / "vera.index", DATA_DIR / "vera" / "vera.dict.dz")
    assert len(entries) > 12_000
    by_head = {h: (w, d) for h, w, d in entries}
    assert by_head["3gpp"] == ("3GPP", "Third Generation Partnerships Projects (org.)")


def test_expansion_counts_another_entry_with_the_same_words():
    corpus = pl.DataFrame(
        {
            "id": ["d1", "d2", "d3"],
            "text": [
                "transmission control protocol (TCP, RFC 793)",
                "transmission control protocol [internet]",
                "user datagram protocol (UDP)",
            ],
        }
    )
    test = split(
        {"q1": "transmission control", "q2": "datagram user", "q3": "control protocol"},
        [("q1", "d2"), ("q2", "d3"), ("q3", "d3")],
    )
    enc = BagOfWords(corpus["text"].to_list())
    res = dictd.ExpansionEvaluator().evaluate(enc, corpus, test, [1, 3])
    # q1 ranks d1 first: not its judged entry, but the same expansion -> right
    assert res.per_query["q1"]["expansion@1"] == 1.0
    assert res.per_query["q2"]["expansion@1"] == 1.0
    assert res.per_query["q3"]["expansion@1"] == 0.0 and res.per_query["q3"]["expansion@3"] == 1.0
    assert res.metrics["expansion@1"] == pytest.approx(2 / 3)
    assert set(res.metrics) == set(dictd.ExpansionEvaluator().metric_names([1, 3]))


# --- CoNaLa ----------------------------------------------------------------------------------------


@needs_data
def test_conala_loads_the_official_split(tmp_path):
    data = conala.Conala().load({"path": None, "intent": "rewritten", "url": conala.URL}, ctx(tmp_path))
    assert data.corpus.height == 2810  # every distinct snippet of both files
    assert data.qrels["train"].height == 2378 - 12 and data.qrels["test"].height >= 490
    train_q = set(data.qrels["train"]["query_id"])
    assert not train_q & set(data.qrels["test"]["query_id"])
    original = conala.Conala().load({"path": None, "intent": "original", "url": conala.URL}, ctx(tmp_path))
    assert set(original.queries["text"]) != set(data.queries["text"])


def test_conala_offline_says_where_it_looked_and_what_failed(tmp_path):
    with pytest.raises(DataError) as e:
        conala.Conala().load(
            {"path": None, "intent": "rewritten", "url": "http://127.0.0.1:9/conala.zip"},
            ctx(tmp_path, tmp_path / "nowhere"),
        )
    assert str(tmp_path / "nowhere" / "conala") in str(e.value)
    assert "downloading http://127.0.0.1:9/conala.zip failed" in str(e.value)


def test_code_shape_ignores_names_and_literals_not_what_the_code_does():
    same = conala.code_shape
    assert same("df.sort_values('a')") == same("frame.sort_values('b')")
    assert same("[x * 2 for x in xs]") == same("[i * 2 for i in items]")
    assert same("x.append(1)") != same("x.extend(1)")
    assert same("print 'hello'") == same("print  'bye'")  # Python 2: no syntax tree, normalised text


def test_code_evaluator_success_and_equivalent():
    corpus = pl.DataFrame(
        {
            "id": ["s1", "s2", "s3"],
            "text": ["frame.sort_values('year')", "df.sort_values('col')", "os.remove(path)"],
        }
    )
    test = split({"q1": "frame sort_values year", "q2": "remove file path"}, [("q1", "s2"), ("q2", "s3")])
    res = conala.CodeEvaluator().evaluate(
        BagOfWords(["frame.sort_values('year')", "remove path"]), corpus, test, [1, 10]
    )
    assert res.per_query["q1"]["success@1"] == 0.0  # s1 is ranked first, s2 is the gold snippet
    assert res.per_query["q1"]["equivalent@1"] == 1.0  # ... but s1 does the same thing
    assert res.metrics["success@10"] == 1.0


def test_code_evaluator_works_out_each_documents_shape_once(monkeypatch):
    """The memo of code shapes: every document looked at is parsed once, however many queries and
    cut-offs look at it."""
    calls = []
    real = conala.code_shape
    monkeypatch.setattr(conala, "code_shape", lambda text: calls.append(text) or real(text))
    corpus = pl.DataFrame(
        {
            "id": ["s1", "s2", "s3"],
            "text": ["frame.sort_values('year')", "df.sort_values('col')", "os.remove(path)"],
        }
    )
    test = split(
        {"q1": "frame sort_values year", "q2": "frame year", "q3": "remove path"},
        [("q1", "s2"), ("q2", "s2"), ("q3", "s3")],
    )
    conala.CodeEvaluator().evaluate(
        BagOfWords(["frame.sort_values('year')", "remove path"]), corpus, test, [1, 3, 10]
    )
    # s1 is nobody's gold snippet: only the memo asks for its shape, for both frame queries at every k
    assert calls.count("frame.sort_values('year')") == 1, calls


# --- TAT-QA ----------------------------------------------------------------------------------------


@needs_data
def test_tatqa_documents_and_evidence(tmp_path):
    opts = {k: o.default for k, o in tatqa.TatQA.options.items()}
    data = tatqa.TatQA().load(opts, ctx(tmp_path))
    assert data.corpus.height == 2635 + 555
    raw = json.loads((DATA_DIR / "tatqa" / "tatqa_dataset_test_gold.json").read_text())
    report = raw[0]
    q = next(q for q in report["questions"] if q["answer_from"] == "table-text" and q["rel_paragraphs"])
    rel = set(data.qrels["test"].filter(pl.col("query_id") == f"test/{q['uid']}")["doc_id"])
    rid = report["table"]["uid"]
    assert rel == {f"{rid}/table"} | {f"{rid}/p{o}" for o in q["rel_paragraphs"]}
    table = dict(zip(data.corpus["id"], data.corpus["text"]))[f"{rid}/table"]
    assert " | " in table and "\n" in table


def test_evidence_needs_every_piece_and_the_right_report():
    corpus = pl.DataFrame(
        {
            "id": ["r1/table", "r1/p1", "r2/table", "r2/p1"],
            "text": [
                "revenue 2019 2018 total",
                "revenue grew because of cloud sales",
                "revenue 2019 2018 total costs",
                "costs fell",
            ],
        }
    )
    test = split(
        {"q1": "revenue grew cloud", "q2": "total costs 2019"},
        [("q1", "r1/table"), ("q1", "r1/p1"), ("q2", "r1/table")],
    )
    res = tatqa.EvidenceEvaluator().evaluate(BagOfWords(corpus["text"].to_list()), corpus, test, [1, 3, 10])
    assert res.per_query["q1"]["report@1"] == 1.0
    assert res.per_query["q2"]["report@1"] == 0.0  # r2's table looks more like it
    assert res.per_query["q1"]["full_evidence@1"] == 0.0 and res.per_query["q1"]["full_evidence@3"] == 1.0


# --- end to end ------------------------------------------------------------------------------------


@pytest.mark.integration
def test_vera_suite_runs_on_minilm_with_its_evaluator(tmp_path, run_cli):
    """The shipped suite file, cut to a slice by a profile of this test: real MiniLM, real V.E.R.A."""
    suite = (Path(__file__).parents[1] / "suites" / "vera.toml").read_text()
    suite += (
        "\n[profiles.slice.data]\nlimit_train_pairs = 256\nlimit_test_queries = 100\nlimit_corpus = 800\n"
        "dev_corpus_size = 300\n[profiles.slice.training]\nepochs = 1\nbatch_size = 32\n"
        # on a slice the gain is noise: one threshold set to pass, one no model can meet
        '[[profiles.slice.thresholds]]\nmetric = "expansion@1"\nmin = 0.0\n'
        '[[profiles.slice.thresholds]]\nmetric = "ndcg@10"\nmin = 1.01\n'
    )
    path = tmp_path / "vera.toml"
    path.write_text(suite)
    code, out = run_cli(
        "run", str(path), "--profile", "slice", "--device", "cpu", "--out", str(tmp_path / "r"), "-q"
    )
    doc = json.loads((tmp_path / "r" / "vera" / "latest" / "results.json").read_text())
    base, cand = doc["candidates"][0], doc["candidates"][1]
    assert base["baseline"] and not cand["baseline"], out
    for c in (base, cand):
        assert {"ndcg@10", "expansion@1", "expansion@3"} <= set(c["metrics"]), out
    gates = {g["metric"]: g["passed"] for g in cand["gates"] if g["kind"] == "min"}
    assert gates == {"expansion@1": True, "ndcg@10": False}, cand["gates"]
    assert cand["status"] == "failed" and code == 1, out


def test_the_report_tabulates_a_domain_metric_that_a_threshold_gates():
    from harness.report.html import columns

    doc = {
        "primary_metric": "ndcg@10",
        "candidates": [
            {"gates": [{"metric": "expansion@1"}, {"metric": "docs_per_s"}, {"metric": "ndcg@10"}]}
        ],
    }
    assert columns(doc)[0] == "ndcg@10" and columns(doc)[-1] == "expansion@1"
    assert "docs_per_s" not in columns(doc) and columns(doc).count("ndcg@10") == 1
