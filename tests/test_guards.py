"""Guards: few training pairs, a loss that did not fall, embeddings that did not change, a candidate
not better than its baseline; in results.json, the terminal and the report."""

from __future__ import annotations

import json

from harness.gate.guards import guards


def test_each_guard_and_its_absence():
    good = {
        "training": {"pairs": 900, "history": [{"loss": 2.0}, {"loss": 0.5}], "embedding_change": 0.03},
        "metrics": {"ndcg@10": 0.7},
    }
    assert guards(good, {"metrics": {"ndcg@10": 0.6}}, "ndcg@10") == []
    bad = {
        "training": {
            "pairs": 120,
            "history": [{"loss": 1.0}, {"eval": 1}, {"loss": 1.2}],
            "embedding_change": 2e-6,
        },
        "metrics": {"ndcg@10": 0.5},
    }
    found = guards(bad, {"metrics": {"ndcg@10": 0.6}}, "ndcg@10")
    assert [g.split(" ")[0:2] for g in found] == [
        ["only", "120"],
        ["the", "training"],
        ["the", "embeddings"],
        ["not", "better"],
    ]
    assert "1.0000 at the start, 1.2000 at the end" in found[1]
    assert guards({**bad, "training": {}}, None, "ndcg@10") == []  # nothing to judge by: no guard


def test_a_candidate_that_learned_nothing_is_flagged_everywhere(tmp_path, tiny_suite, run_cli):
    suite = tiny_suite(name="frozen.toml")
    suite.write_text(suite.read_text().replace("learning_rate = 1e-3", "learning_rate = 1e-12"))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "r"), "--device", "cpu", "-q")
    doc = json.loads((tmp_path / "r" / "frozen" / "latest" / "results.json").read_text())
    cand = next(c for c in doc["candidates"] if not c["baseline"])
    assert cand["training"]["embedding_change"] < 1e-4
    assert any(g.startswith("only 64 training pairs") for g in cand["guards"]), cand["guards"]
    assert any(g.startswith("the embeddings did not change") for g in cand["guards"]), cand["guards"]
    assert "    warning: the embeddings did not change" in out
    html = (tmp_path / "r" / "frozen" / "latest" / "report.html").read_text()
    assert "⚠ the embeddings did not change" in html
