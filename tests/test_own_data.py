"""Your data as it comes: the ``pairs`` and ``clicks`` sources, the split the harness makes, the
cleaning report, ``harness data --export``, and the user's own negatives in training."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import DATA_DIR, synthetic_pairs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_beir(folder: Path) -> dict:
    """An exported folder: texts by id, and each split's judgements."""

    def jsonl(f):
        return {o["_id"]: o["text"] for o in map(json.loads, (folder / f).read_text().splitlines())}

    def qrels(split):
        lines = (folder / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]
        return [(q, d, int(s)) for q, d, s in (line.split("\t") for line in lines)]

    return {
        "corpus": jsonl("corpus.jsonl"),
        "queries": jsonl("queries.jsonl"),
        **{s: qrels(s) for s in ("train", "dev", "test")},
    }


def leaks(beir: dict) -> tuple[set, set]:
    """Test query texts among the training pairs' queries, and documents relevant to a test query
    among the training pairs' documents (train and dev both train: a refit uses dev too)."""
    norm = lambda t: " ".join(t.split()).casefold()  # noqa: E731
    q, c = beir["queries"], beir["corpus"]
    training = beir["train"] + beir["dev"]
    train_q = {norm(q[a]) for a, _, _ in training}
    train_d = {norm(c[d]) for _, d, s in training if s > 0}
    test_q = {norm(q[a]) for a, _, _ in beir["test"]}
    test_d = {norm(c[d]) for _, d, s in beir["test"] if s > 0}
    return test_q & train_q, test_d & train_d


# --- the split the harness makes ---------------------------------------------------------------------


def test_the_split_keeps_components_whole_and_does_not_move_when_rows_are_added():
    from harness.data.split import grouped_split

    # a chain q0-d0-q1-d1-q2 is one group; the rest are pairs of their own
    edges = [("q0", "d0"), ("q1", "d0"), ("q1", "d1"), ("q2", "d1")] + [
        (f"x{i}", f"e{i}") for i in range(400)
    ]
    queries = sorted({q for q, _ in edges})
    test, info = grouped_split(queries, edges, 0.15)
    assert len({q in test for q in ("q0", "q1", "q2")}) == 1
    assert info["groups"] == 401 and info["largest_group_queries"] == 3
    assert 0.10 <= info["test_share"] <= 0.20
    more = edges + [(f"y{i}", f"f{i}") for i in range(300)]
    test2, _ = grouped_split(sorted({q for q, _ in more}), more, 0.15)
    assert {q for q in test2 if not q.startswith("y")} == test  # nobody moved
    by_query, _ = grouped_split(queries, edges, 0.15, "query")
    assert len(by_query) > 0


def test_pairs_csv_without_a_split_is_split_without_leaks(tmp_path, tiny_suite, run_cli):
    """Documents shared by several queries (a FAQ answer asked many ways) keep those queries on one
    side; a query typed twice in other case and spacing is one query."""
    rows = []
    for i, r in enumerate(synthetic_pairs(240, 5)):
        rows.append([r["query"], r["document"]])
        if i % 4 == 0:  # another wording of the question, the same answer
            rows.append([r["query"] + " please", r["document"]])
        if i % 10 == 0:
            rows.append(["  " + r["query"].upper() + " ", r["document"]])
    write_csv(tmp_path / "pairs.csv", ["query", "document"], rows)
    suite = tiny_suite(name="own.toml", data='source = "pairs"\nfile = "pairs.csv"')
    code, out = run_cli("data", str(suite), "--export", str(tmp_path / "export"))
    assert code == 0, out
    assert "split: grouped by connected component" in out and "cleaning: duplicate pairs" in out
    beir = read_beir(tmp_path / "export" / "own")
    share = len({q for q, _, _ in beir["test"]}) / len(beir["queries"])
    assert 0.08 <= share <= 0.25, share
    assert leaks(beir) == (set(), set())
    rows_file = (tmp_path / "export" / "own" / "train_rows.jsonl").read_text().splitlines()
    assert rows_file and set(json.loads(rows_file[0])) >= {"query", "positive", "negatives"}
    # the folder reads back as BEIR data, with the same test split
    again = tiny_suite(
        name="again.toml", data=f'source = "beir"\ndataset = "own"\npath = "{tmp_path / "export" / "own"}"'
    )
    code, out = run_cli("data", str(again))
    assert code == 0, out
    assert f"/ {len({q for q, _, _ in beir['test']})} test queries" in out, out


@pytest.mark.integration
def test_scifact_as_one_csv_is_split_10_to_20_percent_without_leaks(tmp_path, run_cli):
    """The issue's bar: SciFact's train and test judgements as one CSV of text pairs, no split column."""
    from scifact_pairs import build

    pairs, corpus = build(DATA_DIR, tmp_path / "data")
    suite = (ROOT / "suites" / "scifact-pairs.toml").read_text()
    (tmp_path / "s.toml").write_text(suite)
    code, out = run_cli("data", str(tmp_path / "s.toml"), "--export", str(tmp_path / "export"))
    assert code == 0, out
    beir = read_beir(tmp_path / "export" / "scifact-pairs")
    test_queries = {q for q, _, _ in beir["test"]}
    assert 0.10 <= len(test_queries) / len(beir["queries"]) <= 0.20
    assert leaks(beir) == (set(), set())
    assert len(beir["corpus"]) == 5183
    assert "over max_seq_length 512" in out and "9% of documents" in out  # abstracts cut when encoded


# --- reading tables --------------------------------------------------------------------------------


def test_every_table_format_gives_the_same_data(tmp_path):
    from harness.api import LoadContext
    from harness.builtin.pairs import PairsSource

    rows = [
        {
            "query": r["query"],
            "document": r["document"],
            "negative": [f"wrong {i}", f"bad {i}"],
            "score": 1 + i % 3,
        }
        for i, r in enumerate(synthetic_pairs(30, 3))
    ]
    frame = pl.DataFrame(rows)
    frame.write_parquet(tmp_path / "p.parquet")
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.json").write_text(json.dumps(rows))
    for sep, suffix in ((",", "csv"), ("\t", "tsv")):
        with (tmp_path / f"p.{suffix}").open("w", newline="") as f:
            w = csv.writer(f, delimiter=sep)
            w.writerow(["query", "document", "negative", "score"])
            w.writerows([[r["query"], r["document"], json.dumps(r["negative"]), r["score"]] for r in rows])
    ctx = LoadContext(None, tmp_path, tmp_path, ("train", "test"), None, "cpu")
    src = PairsSource()
    loaded = []
    for suffix in ("csv", "tsv", "jsonl", "json", "parquet"):
        opts = {k: o.default for k, o in src.options.items()} | {"file": f"p.{suffix}"}
        data = src.load(opts, ctx)
        loaded.append((sorted(data.qrels["train"].iter_rows()), data.corpus.sort("id").to_dicts()))
    assert all(x == loaded[0] for x in loaded)
    qrels = loaded[0][0]
    assert sum(s == 0 for _, _, s in qrels) == 60 and {s for _, _, s in qrels} == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "name, content, expected",
    [
        (
            "p.csv",
            "question,document\nq,d\n",
            "p.csv: no column 'query' (the option 'query' names it); the file has the columns ['question', "
            "'document']",
        ),
        ("p.csv", "", "p.csv: the file is empty"),
        ("p.csv", "query,document\nfine,doc\n  ,doc two\n", "p.csv:3: column 'query' is empty"),
        (
            "p.csv",
            "query,document,score\nq,d,1\nq2,d2,high\n",
            "p.csv:3: column 'score': expected a relevance grade, a whole number >= 0",
        ),
        ("p.xlsx", "query,document\nq,d\n", "p.xlsx: unknown file type '.xlsx' for a table of pairs"),
        ("p.jsonl", '{"query": "q", "document": "d"}\n{"query": "q2"\n', "p.jsonl:2: malformed JSON line"),
        ("p.csv", "query,document\nq,d\nq2,d2,extra\n", "p.csv:3: 3 fields where the header has 2"),
        (
            "p.csv",
            "query,document,split\nq,d,train\nq2,d2,holdout\n",
            "p.csv:3: column 'split': expected 'train' or 'test'",
        ),
        (
            "p.csv",
            "query;document\nq;d\n",
            "the file seems separated by ';', where a .csv file is separated by commas",
        ),
        (
            "p.csv",
            "Query ,document\nq,d\n",
            "no column 'query' (the option 'query' names it); the file has the columns "
            "['Query ', 'document']; did you mean 'Query '?",
        ),
        ("p.csv", "query,document,score\nq,d,1\nq2,d2,\n", "p.csv:3: column 'score' is empty"),
    ],
)
def test_bad_tables_are_exit_4_naming_the_file_and_line(
    tmp_path, tiny_suite, run_cli, name, content, expected
):
    (tmp_path / name).write_text(content)
    suite = tiny_suite(name="own.toml", data=f'source = "pairs"\nfile = "{name}"')
    for command in ("data", "run"):
        code, out = run_cli(
            command, str(suite), *(["--out", str(tmp_path / "o")] if command == "run" else [])
        )
        assert code == 4, out
        assert expected in out, out
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("results.json"))


def test_split_values_in_any_case_and_a_column_of_only_train_rows(tmp_path, tiny_suite, run_cli):
    """'Train'/'TEST' name the splits; a split column that tests nothing gets a made test split, said."""
    pairs = [[r["query"], r["document"]] for r in synthetic_pairs(80, 1)]
    write_csv(
        tmp_path / "given.csv",
        ["query", "document", "split"],
        [p + ["TEST" if i % 5 == 0 else "Train"] for i, p in enumerate(pairs)],
    )
    code, out = run_cli(
        "data", str(tiny_suite(name="given.toml", data='source = "pairs"\nfile = "given.csv"'))
    )
    assert code == 0 and "/ 16 test queries" in out and "split: given by the column 'split'" in out, out
    write_csv(tmp_path / "train.csv", ["query", "document", "split"], [p + ["train"] for p in pairs])
    code, out = run_cli(
        "data", str(tiny_suite(name="train.toml", data='source = "pairs"\nfile = "train.csv"'))
    )
    assert code == 0, out
    assert "the column 'split' puts every row in 'train', so the harness makes the test split" in out, out
    assert "split: grouped by connected component, hashed" in out, out


def test_the_dev_split_keeps_groups_whole_too(tmp_path):
    """No dev query's relevant document is a training positive: a dev split that shares them rewards
    memory, and chooses epochs a leak-free test split would not."""
    from harness.api import RetrievalData, qrels_frame
    from harness.data.prepare import prepare
    from harness.data.tables import text_frame
    from harness.suite.schema import DataTable

    docs = {f"d{i}": f"document {i}" for i in range(60)}
    queries = {f"q{i}": f"query {i}" for i in range(240)}
    pairs = [(f"q{i}", f"d{i % 60}", 1) for i in range(240)]  # four queries per document
    data = RetrievalData(
        text_frame(docs),
        text_frame(queries),
        {"train": qrels_frame(pairs[:200]), "test": qrels_frame(pairs[200:])},
        "x",
        "test data",
    )
    for group_by in ("component", "query"):
        prepared = prepare(data, DataTable(source="jsonl", dev_fraction=0.2, group_by=group_by))
        train_docs = set(prepared.train.qrels["doc_id"])
        dev_docs = set(prepared.dev.qrels["doc_id"])
        assert 30 <= len(prepared.dev) <= 50, len(prepared.dev)
        if group_by == "component":
            assert not train_docs & dev_docs
        else:  # each query alone: documents may be shared, as the key says
            assert train_docs & dev_docs


def test_an_explicit_column_that_is_missing_is_an_error_not_a_default(tmp_path, tiny_suite, run_cli):
    write_csv(
        tmp_path / "p.csv",
        ["query", "document"],
        [[r["query"], r["document"]] for r in synthetic_pairs(40, 1)],
    )
    suite = tiny_suite(name="own.toml", data='source = "pairs"\nfile = "p.csv"\nnegative = "wrong_answers"')
    code, out = run_cli("data", str(suite))
    assert code == 4 and "no column 'wrong_answers' (the option 'negative' names it)" in out, out


# --- cleaning --------------------------------------------------------------------------------------


def test_cleaning_drops_merges_and_counts(tmp_path):
    from harness.api import LoadContext
    from harness.builtin.pairs import PairsSource
    from harness.data.prepare import prepare
    from harness.suite.schema import DataTable

    base = synthetic_pairs(60, 9)
    rows = [[r["query"], r["document"], ""] for r in base]
    rows += [[base[0]["query"], base[0]["document"], ""]]  # the same pair twice
    rows += [[base[1]["query"], base[1]["document"].upper() + "  ", ""]]  # the same document, other case
    rows += [[base[2]["query"], base[2]["query"], ""]]  # the query is its document
    rows += [[base[3]["query"], base[4]["document"], base[3]["document"]]]  # a negative that is a positive
    rows += [["hub question", f"answer {i}", ""] for i in range(25)]  # very many positives
    # one wrong answer on each of a query's rows: how a table gives it, not a duplicate
    rows += [["a query of two answers", f"its answer {i}", "the wrong answer"] for i in range(2)]
    write_csv(tmp_path / "p.csv", ["query", "document", "negative"], rows)
    write_csv(tmp_path / "c.csv", ["text"], [["   "], ["an extra document"]])
    src = PairsSource()
    opts = {k: o.default for k, o in src.options.items()} | {"file": "p.csv", "corpus": "c.csv"}
    data = src.load(opts, LoadContext(None, tmp_path, tmp_path, ("train", "test"), None, "cpu"))
    p = prepare(data, DataTable(source="pairs", dev_fraction=0.1, test_fraction=0.3))
    c = {k: v["count"] for k, v in p.cleaning.items()}
    # the pair given twice, and the pair whose document, merged, is the first one's
    assert c["duplicate_pairs"] == 2 and c["merged_documents"] == 1 and c["empty_documents"] == 1
    assert c["query_equals_document"] == 1 and c["negatives_also_positive"] == 1 and c["many_positives"] == 1
    assert p.cleaning["many_positives"]["examples"][0].startswith("'hub question' (25 positives")
    negatives = p.train_negatives()
    assert all(base[3]["document"] not in n for n in negatives.values())


# --- training with the user's negatives, end to end ----------------------------------------------------


def test_negatives_and_grades_train_and_are_reported(tmp_path, tiny_suite, run_cli):
    """A CSV with a negative column and grades: the training rows carry the negatives (results.json
    says which columns trained), grade-0 rows are negatives, the report shows the cleaning."""
    rows = []
    pairs = synthetic_pairs(160, 4)
    for i, r in enumerate(pairs):
        rows.append([r["query"], r["document"], pairs[(i + 7) % len(pairs)]["document"], 1 + i % 3])
        if i % 5 == 0:
            rows.append([r["query"], pairs[(i + 3) % len(pairs)]["document"], "", 0])  # judged not relevant
    write_csv(tmp_path / "p.csv", ["query", "document", "negative", "score"], rows)
    extra = """
[[losses]]
name = "triplet"
type = "TripletLoss"
[[losses]]
name = "cosent"
type = "CoSENTLoss"
"""
    suite = tiny_suite(extra, "own.toml", data='source = "pairs"\nfile = "p.csv"\ndev_fraction = 0.2')
    code, out = run_cli("check", str(suite))
    assert code == 0, out  # TripletLoss: the pairs source can give negatives, so no mining is needed
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-q")
    assert code == 0, out  # no thresholds, fp32 only: nothing to fail
    doc = json.loads((tmp_path / "o" / "own" / "latest" / "results.json").read_text())
    by = {c["name"]: c for c in doc["candidates"]}
    assert by["tiny-mnrl"]["training"]["columns"] == ["anchor", "positive", "negative"]
    assert by["tiny-triplet"]["training"]["columns"] == ["anchor", "positive", "negative"]
    assert by["tiny-cosent"]["training"]["columns"] == ["sentence1", "sentence2", "score"]
    for name in ("tiny-mnrl", "tiny-triplet", "tiny-cosent"):
        assert by[name]["training"]["negatives"]["given"] > 0, name
    assert doc["data"]["train_negatives"] > 0
    assert doc["data"]["split"]["method"].startswith("grouped by connected component")
    assert "duplicate_pairs" in doc["data"]["cleaning"]
    html = (tmp_path / "o" / "own" / "latest" / "report.html").read_text()
    assert 'id="cleaning"' in html and "anchor, positive, negative" in html
    assert "split: grouped by connected component" in out


def test_a_negative_only_loss_without_negatives_is_said_before_training(tmp_path, tiny_suite, run_cli):
    write_csv(
        tmp_path / "p.csv",
        ["query", "document"],
        [[r["query"], r["document"]] for r in synthetic_pairs(60, 2)],
    )
    extra = '[[losses]]\nname = "triplet"\ntype = "TripletLoss"\n'
    suite = tiny_suite(extra, "own.toml", data='source = "pairs"\nfile = "p.csv"')
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"))
    assert code == 4 and "TripletLoss needs the column 'negative'" in out and "negative column" in out, out


# --- search logs -----------------------------------------------------------------------------------


def test_clicks_positives_and_skip_above_negatives(tmp_path):
    from harness.api import LoadContext
    from harness.builtin.clicks import ClicksSource

    write_csv(tmp_path / "corpus.csv", ["id", "text"], [[f"d{i}", f"document {i}"] for i in range(8)])
    log = [  # session s1: d2 clicked at 3, so d0 and d1 were skipped above it; d3 below is not a negative
        ["cats", "d0", 1, 0, "2026-09-01", "s1"],
        ["cats", "d1", 2, 0, "2026-09-01", "s1"],
        ["cats", "d2", 3, 1, "2026-09-01", "s1"],
        ["cats", "d3", 4, 0, "2026-09-01", "s1"],
        # s2: d1 clicked (so it is a positive of 'cats' after all, not a negative)
        ["Cats ", "d1", 1, 1, "2026-09-02", "s2"],
        ["cats", "d4", 2, 0, "2026-09-02", "s2"],
        # later: the test period
        ["dogs", "d5", 1, 0, "2026-10-05", "s3"],
        ["dogs", "d6", 2, 1, "2026-10-05", "s3"],
    ]
    write_csv(
        tmp_path / "log.csv", ["query", "document_id", "position", "clicked", "timestamp", "session"], log
    )
    src = ClicksSource()
    opts = {k: o.default for k, o in src.options.items()} | {
        "file": "log.csv",
        "corpus": "corpus.csv",
        "test_after": "2026-10-01",
    }
    data = src.load(opts, LoadContext(None, tmp_path, tmp_path, ("train", "test"), None, "cpu"))
    text = dict(data.queries.iter_rows())
    train = {(text[q], d, s) for q, d, s in data.qrels["train"].iter_rows()}
    assert train == {("cats", "d2", 1), ("cats", "d1", 1), ("cats", "d0", 0)}
    assert {(text[q], d, s) for q, d, s in data.qrels["test"].iter_rows()} == {
        ("dogs", "d6", 1),
        ("dogs", "d5", 0),
    }
    assert data.split_info["clicked_and_skipped"] == 1 and data.split_info["skip_above_negatives"] == 2
    assert any("proxy" in w for w in data.warnings)
    opts["min_clicks"] = 2
    with pytest.raises(Exception, match="clicked at least data.min_clicks = 2 times"):
        src.load(opts, LoadContext(None, tmp_path, tmp_path, ("train", "test"), None, "cpu"))


@pytest.mark.integration
def test_a_simulated_scifact_log_gives_mostly_true_pairs(tmp_path, run_cli):
    """A log simulated from SciFact's judgements with a position-biased click model
    (scripts/simulate_clicks.py): clicked abstracts are mostly truly relevant, skipped-above ones
    mostly not; by time, the test claims are those searched after the date."""
    from simulate_clicks import simulate

    from harness.builtin.beir import load_beir_folder

    simulate(DATA_DIR, tmp_path / "log")
    truth = load_beir_folder(DATA_DIR / "scifact", ["train", "test"])
    qtext = dict(truth.queries.iter_rows())
    relevant = {
        (" ".join(qtext[q].split()).casefold(), d)
        for s in ("train", "test")
        for q, d, g in truth.qrels[s].iter_rows()
        if g > 0
    }
    suite = (ROOT / "suites" / "scifact-clicks.toml").read_text()
    suite = suite.replace('test_qrels = "data/scifact-clicks/judged-test.csv"', 'test_after = "2026-10-20"')
    suite = suite.replace("data/scifact-clicks/", f"{tmp_path / 'log'}/")
    (tmp_path / "s.toml").write_text(suite)
    precision = {}
    for min_clicks in (1, 2):
        (tmp_path / "s.toml").write_text(re.sub(r"min_clicks = \d+", f"min_clicks = {min_clicks}", suite))
        export = tmp_path / f"export{min_clicks}"
        code, out = run_cli("data", str(tmp_path / "s.toml"), "--export", str(export))
        assert code == 0, out
        assert "by time" in out and "proxy for relevance" in out
        beir = read_beir(export / "scifact-clicks")
        norm = lambda q: " ".join(beir["queries"][q].split()).casefold()  # noqa: E731
        judged = beir["train"] + beir["dev"] + beir["test"]
        pos = [(norm(q), d) in relevant for q, d, s in judged if s > 0]
        neg = [(norm(q), d) in relevant for q, d, s in judged if s == 0]
        precision[min_clicks] = sum(pos) / len(pos)
        assert len(pos) > 300 and precision[min_clicks] > 0.6, (len(pos), sum(pos))
        assert len(neg) > 300 and sum(neg) / len(neg) < 0.05, (len(neg), sum(neg))
        share = len({q for q, _, _ in beir["test"]}) / len(beir["queries"])
        assert 0.1 < share < 0.4
    assert precision[2] > precision[1] + 0.1, precision  # one noise click is common, two are rare


def test_given_negatives_come_first_and_mined_ones_after_them(tmp_path):
    from harness.api import LoadContext
    from harness.builtin.losses import SPECS
    from harness.builtin.pairs import PairsSource
    from harness.data.prepare import prepare
    from harness.data.trainset import build
    from harness.suite.schema import DataTable

    pairs = synthetic_pairs(80, 6)
    rows = [[r["query"], r["document"], f"wrong answer {i}" if i % 2 else ""] for i, r in enumerate(pairs)]
    write_csv(tmp_path / "p.csv", ["query", "document", "negative"], rows)
    src = PairsSource()
    opts = {k: o.default for k, o in src.options.items()} | {"file": "p.csv"}
    data = prepare(
        src.load(opts, LoadContext(None, tmp_path, tmp_path, ("train", "test"), None, "cpu")),
        DataTable(source="pairs", dev_fraction=0.1),
    )
    anchors, positives = data.train_pairs()
    mined = {"anchor": anchors, "positive": positives, "negative_1": positives[3:] + positives[:3]}
    cols, info = build(data, SPECS["MultipleNegativesRankingLoss"], {}, mined, seed=1)
    assert info["columns"] == ["anchor", "positive", "negative", "negative_1"]
    given = sum(
        1
        for a in anchors
        if a
        in {q for q in dict(data.train.queries.iter_rows()).values() if any(q == r[0] and r[2] for r in rows)}
    )
    assert info["negatives"] == {"given": given, "mined": len(anchors), "random": len(anchors) - given}
    assert all(
        n.startswith("wrong answer")
        for a, n in zip(cols["anchor"], cols["negative"])
        if any(a == r[0] and r[2] for r in rows)
    )
    held_out = set(data.test.qrels["doc_id"]) | set(data.dev.qrels["doc_id"])
    docs = data.documents()
    assert not {docs[d] for d in held_out} & set(cols["negative"])  # random ones never held out
    triplets, tinfo = build(data, SPECS["TripletLoss"], {}, mined)
    assert tinfo["columns"] == ["anchor", "positive", "negative"] and tinfo["rows"] == given + len(anchors)
