"""Property-based tests of every file the harness reads back: whatever the bytes of a corpus,
queries or qrels file, the BEIR loader gives a dataset or a DataError naming the file; whatever
the text of a results.json, ``harness report`` renders it or exits 4 naming the file, never 3."""

from __future__ import annotations

import copy
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.builtin.beir import load_beir_folder
from harness.errors import DataError

GOOD = {
    "corpus.jsonl": b'{"_id": "d1", "title": "t", "text": "one"}\n{"_id": "d2", "text": "two"}\n',
    "queries.jsonl": b'{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "second"}\n',
    "qrels/train.tsv": b"query-id\tcorpus-id\tscore\nq1\td1\t1\n",
    "qrels/test.tsv": b"q2\td2\t1\n",
}
#: bytes that make trouble: invalid UTF-8, a BOM, CR, NUL, tabs, JSON punctuation, deep nesting
nasty = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                b"\xff",
                b"\xef\xbb\xbf",
                b"\r\n",
                b"\x00",
                b"\t",
                b"{",
                b"}",
                b'"',
                b'{"_id": 1, "text": null}',
                b"[" * 2000,
                b"q1\td1\tx",
                b"\n",
                b"1e309",
                b'{"_id": "d1", "text": "dup"}',
            ]
        ),
        max_size=12,
    ).map(b"".join),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(GOOD)), nasty, st.booleans())
def test_any_bytes_in_a_beir_file_load_or_raise_a_data_error_naming_the_file(
    tmp_path_factory, name, data, append
):
    folder = tmp_path_factory.mktemp("beir")
    (folder / "qrels").mkdir()
    for f, content in GOOD.items():
        (folder / f).write_bytes(content + data if append and f == name else data if f == name else content)
    try:
        loaded = load_beir_folder(folder, ["train", "test"])
    except DataError as e:
        assert str(folder / name) in str(e), (name, str(e))
    else:
        assert set(loaded.qrels) == {"train", "test"} and loaded.corpus.width == 2


def mutations(doc: dict, rng: random.Random, n: int) -> dict:
    """``doc`` with ``n`` random changes: a key dropped, or a value replaced by another JSON value."""
    doc = json.loads(json.dumps(doc))
    junk = [None, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, True]
    for _ in range(n):
        node, path = doc, []
        while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            if not isinstance(node[key], (dict, list)) or not node[key]:
                break
            path.append(key)
            node = node[key]
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if rng.random() < 0.5:
                del node[key]
            else:
                node[key] = copy.deepcopy(rng.choice(junk))  # a shared {"a": 1} could come to hold itself
        elif isinstance(node, list) and node:
            node[rng.randrange(len(node))] = copy.deepcopy(rng.choice(junk))
    return doc


def conforms(text: str) -> bool:
    """Whether ``text`` is a results.json of the schema, as jsonschema judges it on its own (after the
    upgrade of documents older versions wrote)."""
    from jsonschema import Draft202012Validator

    from harness.report.document import SCHEMA, upgrade

    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    if isinstance(doc, dict) and isinstance(doc.get("candidates"), list):
        doc = upgrade(doc)
    return Draft202012Validator(json.loads(SCHEMA.read_text())).is_valid(doc)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """The results.json of a real (tiny) run, written once for the module."""
    from .conftest import _tiny_model, synthetic_pairs

    folder = tmp_path_factory.mktemp("real")
    model = _tiny_model(folder / "model")
    for name, n, seed in (("train", 60, 1), ("test", 20, 2)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synthetic_pairs(n, seed)))
    (folder / "s.toml").write_text(
        f'[suite]\nname = "tiny"\n[data]\nsource = "jsonl"\ntrain = "{folder / "train.jsonl"}"\n'
        f'test = "{folder / "test.jsonl"}"\n[[models]]\nname = "tiny"\nbase = "{model}"\n'
        '[[losses]]\nname = "mnrl"\ntype = "MultipleNegativesRankingLoss"\n[training]\nepochs = 1\n'
        "[evaluation]\nk_values = [1, 10]\n[export]\ncheck_samples = 4\n"
        # gates of both outcomes in the document: one set to pass, one no model can meet
        '[[thresholds]]\nmetric = "ndcg@10"\nmin = 0.0\n[[thresholds]]\nmetric = "ndcg@10"\nmin = 1.01\n'
    )
    from harness.cli import main

    assert main(["run", str(folder / "s.toml"), "--out", str(folder / "o"), "--device", "cpu", "-q"]) == 1
    return json.loads(next((folder / "o" / "tiny").glob("*/results.json")).read_text())


@pytest.mark.damaged_results
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.text(max_size=200).map(lambda t: ("text", t)),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
            max_leaves=10,
        ).map(lambda v: ("json", v)),
        st.tuples(st.integers(0, 2**32), st.integers(1, 4)).map(lambda t: ("mutated", t)),
    )
)
def test_any_results_json_renders_or_is_a_usage_error(real_run, tmp_path_factory, run_cli, case):
    kind, value = case
    folder = tmp_path_factory.mktemp("run")
    if kind == "text":
        text = value
    elif kind == "json":
        text = json.dumps(value)
    else:
        text = json.dumps(mutations(real_run, random.Random(value[0]), value[1]))
    (folder / "results.json").write_text(text)
    code, out = run_cli("report", str(folder))
    # the one outcome the input determines: a document of the schema renders, any other is exit 4
    assert code == (0 if conforms(text) else 4), out
    assert "Traceback" not in out and (code == 0 or str(folder / "results.json") in out), out
