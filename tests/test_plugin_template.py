"""docs/plugin_template.py, the starting point docs/plugins.md gives, works as it stands: loaded
with -p, its source and evaluator run in a real suite on the tiny model, and its errors are precise."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from .conftest import synthetic_pairs

TEMPLATE = Path(__file__).parents[1] / "docs" / "plugin_template.py"


def write_faq(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["question", "answer"])
        w.writeheader()
        for r in rows:
            w.writerow({"question": r["query"], "answer": r["document"]})


def test_template_plugin_runs_a_suite(tmp_path, tiny_suite, run_cli):
    write_faq(tmp_path / "faq.csv", synthetic_pairs(120, 3))
    suite = tiny_suite(
        '[[thresholds]]\nmetric = "mean_first_rank@10"\nmax = 11.0\n',
        name="faq.toml",
        data='source = "faq"\nfile = "faq.csv"\nholdout = 0.25\ndev_fraction = 0.2',
    )
    suite.write_text(
        suite.read_text().replace("[evaluation]\n", '[evaluation]\nevaluators = ["retrieval", "first_hit"]\n')
    )
    code, out = run_cli("plugins", "-p", str(TEMPLATE))
    assert "pair source faq:" in out and "evaluator first_hit:" in out
    code, out = run_cli(
        "run", str(suite), "-p", str(TEMPLATE), "--out", str(tmp_path / "r"), "--device", "cpu", "-q"
    )
    assert code == 0, out
    doc = json.loads((tmp_path / "r" / "faq" / "latest" / "results.json").read_text())
    for c in doc["candidates"]:
        assert 1.0 <= c["metrics"]["mean_first_rank@10"] <= 11.0
    assert doc["data"]["test_queries"] > 10


def test_template_errors_name_file_and_line(tmp_path):
    import importlib.util

    (tmp_path / "faq.csv").write_text("question,answer\nhow,now\n,missing question\n")
    spec = importlib.util.spec_from_file_location("plugin_template", TEMPLATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from harness.api import LoadContext
    from harness.errors import DataError

    with pytest.raises(DataError, match=r"faq.csv:3: expected the columns question and answer"):
        module.FaqSource().load({"file": "faq.csv", "holdout": 0.2}, LoadContext(None, tmp_path, tmp_path))
