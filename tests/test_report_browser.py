"""The report in a real browser: headless Chromium renders it with no console error and no network
request, and shows the ranking with intervals, the plots, the per-query view and the metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import chromium_page, needs_chromium

MARKUP = '<img src="x" onerror="window.injected = 2"><b>bold?</b>'


@pytest.fixture()
def report(tiny_suite, run_cli, tmp_path, pair_files) -> Path:
    # dataset text with markup: it must show as text in the per-query view, never as HTML
    test = pair_files / "test.jsonl"
    rows = [json.loads(line) for line in test.read_text().splitlines()]
    test.write_text(
        "".join(
            json.dumps({"query": r["query"] + " " + MARKUP, "document": r["document"] + " " + MARKUP}) + "\n"
            for r in rows
        )
    )
    suite = tiny_suite(
        '[[losses]]\nname = "sym"\ntype = "MultipleNegativesSymmetricRankingLoss"\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain_ci = 5.0\ncandidates = ["*-sym"]\n',
        export='variants = ["fp32", "O2"]\nship = "O2"\n',
    )
    text = suite.read_text().replace(
        "[suite]\n", '[suite]\ndescription = "<script>window.injected = 1</script> & <b>not bold</b>"\n'
    )
    suite.write_text(text)
    out = tmp_path / "out"
    for _ in range(2):  # two runs: the second report has a history
        code, output = run_cli("run", str(suite), "--out", str(out), "--device", "cpu", "-q")
        assert code == 1, output  # tiny-sym's min_gain_ci 5.0 cannot pass; tiny-mnrl passes and ships
    return (out / "tiny" / "latest" / "report.html").resolve()


@needs_chromium
def test_report_renders_offline_in_chromium(report, tmp_path):
    html = report.read_text()
    assert "<script" not in html.replace("&lt;script", "")  # no scripts at all; the injected one is escaped
    with chromium_page(report) as (page, errors, requests):
        assert errors == []
        assert requests == [report.as_uri()]  # the page itself and nothing else
        assert page.evaluate("window.injected === undefined")
        assert "<script>window.injected = 1</script> & <b>not bold</b>" in page.inner_text("body")
        ranking = page.inner_text("#ranking")
        assert "tiny-mnrl" in ranking and "tiny-baseline" in ranking and "p=" in ranking
        # the two candidates and the baseline, and the default bm25 reference among them
        assert (
            page.locator("#ranking tbody tr").count() == 4
            and page.locator("#ranking tr.reference").count() == 1
        )
        assert "BM25 (bm25s: k1=1.5" in ranking and page.locator("#references tbody tr").count() == 2
        assert any(
            mark in ranking for mark in ("significantly better", "not distinguishable", "significantly worse")
        )
        assert "✗ ndcg@10 min_gain_ci 5.0 vs baseline" in ranking and "95% CI of the gain" in ranking
        assert page.locator("figure svg").count() >= 3
        for plot in ("ndcg", "outcomes", "speed", "training", "history"):
            assert page.locator(f"#plot-{plot} svg").count() >= 1, plot
        # one row per export variant: the baseline's fp32, each candidate's fp32 and shipped O2
        assert page.locator("#variants tbody tr").count() == 5
        assert page.locator("#variants tr.shipped").count() == 2 and "O2 (shipped)" in page.inner_text(
            "#variants"
        )
        assert page.locator("#plot-speed circle").count() >= 5
        assert page.locator("#per-query").count() == 1 and page.locator(".q").count() >= 1
        assert page.locator("img").count() == 0 and MARKUP in page.inner_text(".q")
        meta = page.inner_text("#metadata")
        assert (
            "sha256" in meta and "fingerprint" in meta and "CPUExecutionProvider" in meta and "torch" in meta
        )
        assert page.locator("#history tbody tr").count() == 2
        shot = Path(os.environ.get("HARNESS_SCREENSHOT_DIR", tmp_path)) / "report.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_junit_has_one_testcase_per_candidate_and_threshold(tiny_suite, run_cli, tmp_path):
    import xml.etree.ElementTree as ET

    suite = tiny_suite(
        '[[losses]]\nname = "broken"\ntype = "MultipleNegativesRankingLoss"\nsimilarity_fct = "nope"\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin_gain = -1.0\nmax_drop = 1.0\n'
        '[[thresholds]]\nmetric = "ndcg@10"\nmin = 2.0\n[[thresholds]]\nmetric = "docs_per_s"\nmin = 1.0\n'
    )
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    code, text = run_cli(
        "run", str(suite), "--out", str(out), "--device", "cpu", "-q", "--junitxml", str(junit)
    )
    assert code == 1
    doc = json.loads((out / "tiny" / "latest" / "results.json").read_text())
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 2 * 4  # 2 candidates x 4 gates (min_gain, max_drop, min, docs_per_s min)
    mnrl = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl")
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {
        ("tiny.tiny-mnrl", f"{g['metric']} {g['kind']}") for g in mnrl["gates"] if not g["passed"]
    }
    assert failed == {("tiny.tiny-mnrl", "ndcg@10 min")}
    errored = [c for c in cases if c.find("error") is not None]
    assert len(errored) == 4 and all(c.get("classname") == "tiny.tiny-broken" for c in errored)
    assert root.get("failures") == "1" and root.get("errors") == "4" and root.get("tests") == "8"


def test_compare_gates_against_a_previous_run(tiny_suite, run_cli, tmp_path):
    first_dir = tmp_path / "first"
    code, _ = run_cli("run", str(tiny_suite()), "--out", str(first_dir), "--device", "cpu", "-q")
    assert code == 0
    suite = tiny_suite('[[thresholds]]\nmetric = "ndcg@10"\nmax_drop = 0.0\nagainst = "compare"\n')
    code, text = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q")
    assert code == 4 and "thresholds[0].against: 'compare' needs --compare RESULTS" in text
    prev = first_dir / "tiny" / "latest" / "results.json"
    code, text = run_cli(
        "run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q", "--compare", str(prev)
    )
    doc = json.loads((tmp_path / "o" / "tiny" / "latest" / "results.json").read_text())
    cand = next(c for c in doc["candidates"] if not c["baseline"])
    assert cand["compared_with"]["name"] == "tiny-mnrl"
    gate = cand["gates"][0]
    assert gate["against"] == "compare" and "ci" in gate
    # the same suite, data and seed: the same model, so no drop at all
    assert gate["value"] == pytest.approx(0.0, abs=1e-6) and gate["passed"] and code == 0
    assert doc["compare"]["name"] == "tiny-mnrl"
    assert (
        "Against the model in production" in (tmp_path / "o" / "tiny" / "latest" / "report.html").read_text()
    )


def test_training_plot_labels_the_kept_dev_evaluation_not_every_one():
    from harness.report import plots

    hist = [{"step": 10 * e + 5, "epoch": e - 0.5, "loss": 1.0 / e} for e in range(1, 21)]
    hist += [
        {"step": 10 * e, "epoch": float(e), "dev_ndcg@10": 0.8 + e / 100 - (e > 7) * (e - 7) / 200}
        for e in range(1, 21)
    ]
    svg = str(
        plots.training_curves([{"name": "m", "training": {"history": hist, "chosen_epoch": 7.0}}], "ndcg@10")
    )
    assert svg.count("<title>") == 21  # every dev point has a tooltip, the kept one a second
    assert svg.count(">kept ") == 1 and "kept 0.870" in svg and "kept: ndcg@10 0.8700 at step 70" in svg
    assert ">0.810<" in svg and ">0.935<" in svg  # the first and the last dev values
    assert ">0.850<" not in svg  # the others only as tooltips
