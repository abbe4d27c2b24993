"""harness/report/results.schema.json: a valid JSON Schema that the results.json of a real run follows (every
results.json the tests write is validated by the autouse fixture in conftest.py) and that a damaged
document breaks, at the place that is wrong."""

from __future__ import annotations

import copy
import json

from .conftest import RESULTS_SCHEMA, results_problems


def test_the_schema_is_a_valid_json_schema():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(json.loads(RESULTS_SCHEMA.read_text()))


DAMAGES = [
    (lambda d: d.pop("candidates"), "(top)"),
    (lambda d: d["candidates"][1].update(status="evaluated"), "candidates/1/status"),
    (lambda d: d["candidates"][1]["gates"][0].pop("passed"), "candidates/1/gates/0"),
    (lambda d: d["candidates"][1].pop("training"), "candidates/1"),
    (lambda d: d["candidates"][0].update(status="error"), "candidates/0"),
    (lambda d: d["candidates"][1]["metrics"].update({"ndcg@10": "high"}), "candidates/1/metrics/ndcg@10"),
    (lambda d: d.update(exit_code=7), "exit_code"),
]


def test_a_real_run_follows_the_schema_and_a_damaged_one_breaks_it_where_it_is_wrong(
    tiny_suite, run_cli, tmp_path
):
    code, out = run_cli(
        "run",
        str(tiny_suite('[[thresholds]]\nmetric = "ndcg@10"\nmin = 0.0\n')),
        "--out",
        str(tmp_path / "o"),
        "--device",
        "cpu",
        "-q",
    )
    assert code == 0, out
    doc = json.loads((tmp_path / "o" / "tiny" / "latest" / "results.json").read_text())
    assert results_problems(doc) == []
    assert [c["baseline"] for c in doc["candidates"]] == [True, False] and doc["candidates"][1]["gates"]
    for damage, where in DAMAGES:
        broken = copy.deepcopy(doc)
        damage(broken)
        problems = results_problems(broken)
        assert any(p.startswith(where + ":") for p in problems), (where, problems)
