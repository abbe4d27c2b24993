"""References: BM25 (bm25s) once per suite, the hybrid (dense fused with BM25) of every candidate
and baseline, each scored by the retrieval evaluator's own code and usable in thresholds with the
same paired statistics as the baseline."""

from __future__ import annotations

import json

import pytest

from .conftest import DATA_DIR
from .conftest import HYBRID_REFERENCES as HYBRID


def results(folder) -> dict:
    return json.loads((folder / "tiny" / "latest" / "results.json").read_text())


@pytest.mark.integration
def test_bm25_on_scifact_is_the_published_figure():
    """MTEB's BM25s baseline scores SciFact test nDCG@10 0.687; the `bm25` reference, with its
    defaults (Lucene BM25, English stemming and stop words), must be within 0.02 of it."""
    from harness.builtin.beir import load_beir_folder
    from harness.data.prepare import prepare
    from harness.evaluate.references import evaluate_bm25
    from harness.suite.schema import DEFAULT_REFERENCES, DataTable, Suite

    data = prepare(load_beir_folder(DATA_DIR / "scifact", ["train", "test"]), DataTable(source="beir"))
    suite = Suite(data=DataTable(source="beir"), models=[], losses=[])
    res = evaluate_bm25(suite, data, DEFAULT_REFERENCES[0])
    assert len(res["per_query"]) == 300 and res["settings"] == {
        "k1": 1.5,
        "b": 0.75,
        "stemmer": "english",
        "stopwords": "en",
    }
    assert abs(res["metrics"]["ndcg@10"] - 0.687) <= 0.02, res["metrics"]
    # the metrics are the retrieval evaluator's: the mean of the per-query values it computes
    assert res["metrics"]["ndcg@10"] == pytest.approx(
        sum(q["ndcg@10"] for q in res["per_query"].values()) / 300, abs=1e-4
    )


def test_a_gate_against_bm25_fails_when_the_candidate_does_not_beat_it(tiny_suite, run_cli, tmp_path):
    # the synthetic queries are two words of their document: keyword search finds them, the tiny model less so
    suite = tiny_suite('[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = 0.0\nagainst = "bm25"\n')
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    doc = results(tmp_path / "o")
    bm25 = next(r for r in doc["references"] if r["name"] == "bm25")
    cand = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl")
    (gate,) = cand["gates"]
    assert gate["against"] == "bm25" and gate["ci"] and 0 <= gate["p_value"] <= 1
    assert gate["value"] == pytest.approx(cand["metrics"]["ndcg@10"] - bm25["metrics"]["ndcg@10"], abs=1e-5)
    assert cand["metrics"]["ndcg@10"] < bm25["metrics"]["ndcg@10"] and not gate["passed"]
    assert code == 1 and cand["status"] == "failed", text
    assert "tiny::bm25 ndcg@10=" in text and "REFERENCE (bm25" in text and "vs bm25: " in text, text


def test_hybrid_rows_for_every_candidate_and_baseline_and_the_report_rerenders_them(
    tiny_suite, run_cli, tmp_path
):
    """Each baseline's and candidate's hybrid is a candidate of its own: its fusion chosen on dev (every
    setting tried with its dev score), read on test once, judged and ranked like a dense row."""
    from harness.evaluate.fusion import RRF_KS, WEIGHTS

    suite = tiny_suite(HYBRID + '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\nagainst = "hybrid"\n')
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 0, text
    doc = results(tmp_path / "o")
    hybrids = {r["fuses"]: r for r in doc["references"] if r["type"] == "hybrid"}
    assert set(hybrids) == {"tiny-baseline", "tiny-mnrl"}
    assert all(r["of"] == "bm25" and "ndcg@10" in r["metrics"] for r in hybrids.values())
    rows = {c["name"]: c for c in doc["candidates"]}
    assert {"tiny-baseline+bm25", "tiny-mnrl+bm25"} <= set(rows)
    for dense in ("tiny-baseline", "tiny-mnrl"):
        row = rows[f"{dense}+bm25"]
        assert row["hybrid_of"] == {"dense": dense, "reference": "hybrid", "of": "bm25"}
        assert hybrids[dense]["candidate"] == row["name"]
        fusion = row["fusion"]
        tried = fusion["tried"]
        assert len(tried) == len(RRF_KS) + len(WEIGHTS)  # neither method nor parameter set: both searched
        best = max(t["ndcg@10"] for t in tried)
        assert fusion["dev"]["ndcg@10"] == best and fusion["chosen_by"] == "dev ndcg@10"
        chosen = next(t for t in tried if t["ndcg@10"] == best)
        assert fusion["method"] == chosen["method"] and fusion.get("rrf_k") == chosen.get("rrf_k")
        assert fusion["bm25"] == {
            "k1": 1.5,
            "b": 0.75,
            "stemmer": "english",
            "stopwords": "en",
            "method": "lucene",
        }
        assert row["metrics"] == hybrids[dense]["metrics"]  # test read once, with the chosen setting
        assert row["status"] == "passed" and set(row["comparison"]) == {"baseline", "bm25", "hybrid"}
        assert row["dev"] == fusion["dev"]
    cand, base = rows["tiny-mnrl"], rows["tiny-baseline"]
    assert cand["dev"] == rows["tiny-mnrl+bm25"]["fusion"]["dense_dev"]
    # the hybrid threshold holds the candidate against its untuned baseline's hybrid
    (gate,) = cand["gates"]
    assert gate["value"] == pytest.approx(
        cand["metrics"]["ndcg@10"] - base["hybrid"]["hybrid"]["metrics"]["ndcg@10"], abs=1e-5
    )
    assert set(cand["comparison"]) == {"baseline", "bm25", "hybrid"}
    # "best" ships the passing row best on dev
    passing = [c for c in doc["candidates"] if not c["baseline"] and c["status"] == "passed"]
    assert (
        doc["shipped"] == max(passing, key=lambda c: (c["dev"]["ndcg@10"], c["metrics"]["ndcg@10"]))["name"]
    )
    assert "tiny::tiny-mnrl+bm25 ndcg@10=" in text, text
    report = tmp_path / "o" / "tiny" / "latest" / "report.html"
    report.unlink()
    code, text = run_cli("report", str(tmp_path / "o" / "tiny" / "latest"))
    assert code == 0, text
    html = report.read_text()
    for row in (
        "tiny-mnrl+bm25",
        "tiny-baseline+bm25",
        "tiny-mnrl fused with bm25 (",
        "BM25 (bm25s: k1=1.5",
        "Against the references",
    ):
        assert row in html, row
    assert "tiny-mnrl + hybrid" not in html  # not twice: the reference row is the candidate's


def test_a_gate_against_the_untuned_hybrid_fails_the_rows_that_do_not_beat_it(tiny_suite, run_cli, tmp_path):
    """`against = "hybrid"`: every row, dense or hybrid, is held against the untuned model fused with
    BM25; a bar above what a row gains fails it (exit 1), and nothing failing is shipped."""
    gate = '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = {}\nagainst = "hybrid"\ncandidates = ["{}"]\n'
    suite = tiny_suite(HYBRID + gate.format(0.5, "tiny-mnrl*"))
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    doc = results(tmp_path / "o")
    rows = {c["name"]: c for c in doc["candidates"]}
    untuned = rows["tiny-baseline+bm25"]["metrics"]["ndcg@10"]
    for name in ("tiny-mnrl", "tiny-mnrl+bm25"):
        (g,) = rows[name]["gates"]
        assert g["against"] == "hybrid" and not g["passed"] and rows[name]["status"] == "failed", g
        assert g["value"] == pytest.approx(rows[name]["metrics"]["ndcg@10"] - untuned, abs=1e-5)
    assert code == 1, text
    assert doc["shipped"] == "tiny-baseline+bm25"  # the one passing row (no gate applies to it)


def test_weighted_fusion_and_no_references(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(
        HYBRID.replace('type = "hybrid"', 'type = "hybrid"\nmethod = "weighted"\nweight = 0.7')
    )
    code, text = run_cli(
        "run",
        str(suite),
        "--out",
        str(tmp_path / "w"),
        "--device",
        "cpu",
        "-q",
        "--set",
        "suite.ship=tiny-mnrl+bm25",
    )
    assert code == 0, text
    doc = results(tmp_path / "w")
    hybrid = next(r for r in doc["references"] if r["type"] == "hybrid")
    assert hybrid["settings"] == {"of": "bm25", "method": "weighted", "weight": 0.7}
    # what the suite sets is kept: nothing else was tried
    row = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl+bm25")
    assert [{k: v for k, v in t.items() if k != "ndcg@10"} for t in row["fusion"]["tried"]] == [
        {"method": "weighted", "weight": 0.7}
    ]
    assert doc["shipped"] == "tiny-mnrl+bm25"  # named by `ship`, whatever is best on dev
    suite.write_text(suite.read_text().replace("[suite]\n", '[suite]\nship = "tiny-mnrl+bm52"\n', 1))
    code, text = run_cli("check", str(suite))
    assert code == 4 and "suite.ship: expected 'best' or the name of a row" in text, text
    assert "did you mean 'tiny-mnrl+bm25'" in text, text
    suite = tiny_suite("references = []\n", name="none.toml")
    text = suite.read_text()
    suite.write_text(
        "references = []\n" + text.replace("references = []\n", "")
    )  # a top-level key: before any table
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "n"), "--device", "cpu", "-q")
    assert code == 0, out
    doc = json.loads(next((tmp_path / "n" / "none").glob("*/results.json")).read_text())
    assert doc["references"] == [] and "REFERENCE" not in out


def test_references_are_checked_with_the_suite(tiny_suite, run_cli):
    bad = tiny_suite(
        '[[references]]\nname = "hy"\ntype = "hybrid"\nof = "nothing"\n'
        '[[references]]\nname = "baseline"\ntype = "bm25"\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = 0.0\nagainst = "bm52"\n'
    )
    code, text = run_cli("check", str(bad))
    assert code == 4, text
    assert "references[0].of: expected the name of a bm25 reference of this suite" in text
    assert "references[1].name: 'baseline' is taken" in text
    assert "thresholds[0].against: expected 'baseline', 'compare' or a reference's name" in text


def test_fusion_by_hand():
    import numpy as np

    from harness.evaluate.lexical import fuse

    dense = np.array([[0.9, 0.1, 0.5]])
    lexical = np.array([[0.0, 3.0, 2.0]])
    rrf = fuse(dense, lexical, "rrf", k=60, depth=3)
    # doc0: dense rank 1, lexical rank 3; doc1: 3 and 1; doc2: 2 and 2
    assert rrf[0] == pytest.approx([1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 2 / 62])
    weighted = fuse(dense, lexical, "weighted", weight=0.5)
    assert weighted[0] == pytest.approx([0.5 * 1 + 0.5 * 0, 0.5 * 0 + 0.5 * 1, 0.5 * 0.5 + 0.5 * 2 / 3])


def test_an_untuned_model_reference_is_evaluated_as_a_baseline_and_gates(tiny_suite, run_cli, tmp_path):
    from .conftest import _tiny_model

    other = _tiny_model(tmp_path / "other", seed=7, pooling="cls")  # a second untuned model, never trained
    suite = tiny_suite(
        f'[[references]]\nname = "bm25"\ntype = "bm25"\n[[references]]\nname = "general"\n'
        f'type = "model"\nmodel = "{other}"\nquery_prompt = "query "\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\nagainst = "general"\n'
    )
    code, text = run_cli(
        "run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q", "-k", "mnrl"
    )
    assert code == 0, text
    doc = results(tmp_path / "o")
    general = next(r for r in doc["references"] if r["name"] == "general")
    assert general["type"] == "model" and general["settings"]["model"] == str(other)
    assert general["encoder"]["file"].endswith("model.onnx") and general["metrics"]["docs_per_s"] > 0
    assert general["metrics"]["model_mb"] > 0 and [v["variant"] for v in general["variants"]] == ["fp32"]
    assert [c["name"] for c in doc["candidates"]] == ["tiny-baseline", "tiny-mnrl"] and doc["not_run"] == []
    cand = doc["candidates"][1]
    (gate,) = cand["gates"]
    assert gate["against"] == "general" and gate["value"] == pytest.approx(
        cand["metrics"]["ndcg@10"] - general["metrics"]["ndcg@10"], abs=1e-5
    )
    assert "tiny::general ndcg@10=" in text and "REFERENCE (model: " in text and "docs/s" in text, text
    assert "vs general: " in text


def test_out_of_domain_data_is_evaluated_for_every_model_and_gates_forgetting(tiny_suite, run_cli, tmp_path):
    from .conftest import synthetic_pairs, write_suite

    other = tmp_path / "other"
    other.mkdir()
    for name, n, seed in (("train", 10, 11), ("test", 25, 12)):
        (other / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synthetic_pairs(n, seed)))
    write_suite(
        tmp_path,
        f'[data]\nsource = "jsonl"\ntrain = "{other / "train.jsonl"}"\n'
        f'test = "{other / "test.jsonl"}"\n[[models]]\nname = "x"\nbase = "x"\n'
        '[[losses]]\nname = "x"\ntype = "MultipleNegativesRankingLoss"\n',
        "other.toml",
    )
    suite = tiny_suite('[[thresholds]]\nmetric = "other/ndcg@10"\nmax_drop = 1.0\n')
    suite.write_text(
        suite.read_text().replace(
            "k_values = [1, 3, 10]",
            'k_values = [1, 3, 10]\n[[evaluation.out_of_domain]]\nname = "other"\nsuite = "other.toml"',
        )
    )
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 0, text
    doc = results(tmp_path / "o")
    base, cand = doc["candidates"]
    for c in (base, cand):
        assert (
            c["out_of_domain"]["other"]["queries"] == 25
            and "ndcg@10" in c["out_of_domain"]["other"]["metrics"]
        )
        assert c["metrics"]["other/ndcg@10"] == c["out_of_domain"]["other"]["metrics"]["ndcg@10"]
    (gate,) = cand["gates"]
    assert gate["metric"] == "other/ndcg@10" and gate["kind"] == "max_drop" and gate["ci"]
    assert gate["value"] == pytest.approx(
        base["metrics"]["other/ndcg@10"] - cand["metrics"]["other/ndcg@10"], abs=1e-5
    )
    assert "out of domain other: ndcg@10=" in text and "vs baseline)" in text, text
    html = (tmp_path / "o" / "tiny" / "latest" / "report.html").read_text()
    assert "Out of domain" in html and 'id="out-of-domain"' in html
    bad = tiny_suite('[[evaluation.out_of_domain]]\nname = "gone"\nsuite = "gone.toml"\n', name="bad.toml")
    text = bad.read_text().replace('[[evaluation.out_of_domain]]\nname = "gone"\nsuite = "gone.toml"\n', "")
    bad.write_text(
        text.replace(
            "k_values = [1, 3, 10]",
            'k_values = [1, 3, 10]\n[[evaluation.out_of_domain]]\nname = "gone"\nsuite = "gone.toml"',
        )
    )
    code, text = run_cli("check", str(bad))
    assert code == 4 and "evaluation.out_of_domain[0].suite: no such file" in text, text
