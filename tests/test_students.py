"""Smaller students (layer-reduced copies of a base, trained like any candidate), the fastest
variant chosen by measurement, and the CPU recorded beside every speed figure."""

from __future__ import annotations

import json

import pytest


def test_layers_kept_evenly_ending_at_the_last_and_the_subsets_dev_chooses_among():
    from harness.train.student import MAX_SUBSETS, evenly_spaced, layer_subsets

    assert evenly_spaced(6, 3) == [1, 3, 5]
    assert evenly_spaced(12, 4) == [2, 5, 8, 11]
    assert evenly_spaced(6, 1) == [5]
    # keep_layers chooses on dev among the subsets that keep the first and the last layer
    assert layer_subsets(6, 3) == [[0, 1, 5], [0, 2, 5], [0, 3, 5], [0, 4, 5]]
    assert len(layer_subsets(6, 4)) == 6 and all(s[0] == 0 and s[-1] == 5 for s in layer_subsets(6, 4))
    assert layer_subsets(6, 1) == [] and layer_subsets(6, 6) == []
    assert layer_subsets(24, 6) == []  # C(22, 4) subsets: too many to score, evenly spaced instead
    assert all(len(layer_subsets(12, k)) <= MAX_SUBSETS for k in range(1, 12))


def test_a_student_is_its_own_candidate_and_the_fastest_variant_ships(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(
        """
[[models]]
name = "small"
base = "{base}"
keep_layers = 1
""",
        export='variants = ["fp32", "int8"]\nship = "fastest"\nmax_drop = 1.0\n',
    )
    text = suite.read_text()
    base = text.split('base = "', 1)[1].split('"', 1)[0]
    suite.write_text(text.replace("{base}", base))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-q")
    assert code == 0, out
    assert "student: layers [1] of the base's 2" in out  # evenly spaced, ending at the last
    doc = json.loads((tmp_path / "o" / "tiny" / "latest" / "results.json").read_text())
    by = {c["name"]: c for c in doc["candidates"]}
    assert by["small-mnrl"]["layers"] == 1 and by["small-mnrl"]["student"]["layers"] == [1]
    assert by["small-mnrl"]["kind"] == "student" and by["small-baseline"]["kind"] == "transformer"
    assert (
        by["tiny-mnrl"]["layers"] == 2 and by["small-baseline"]["layers"] == 2
    )  # its baseline: the full base
    for name in ("small-mnrl", "tiny-mnrl"):
        c = by[name]
        speeds = {v["variant"]: v["metrics"]["docs_per_s"] for v in c["variants"] if "metrics" in v}
        assert c["variant"] == max(speeds, key=speeds.get), (c["variant"], speeds)
        assert "the fastest variant within max_drop" in c["variant_choice"]
    cpu = doc["environment"]["cpu"]
    assert cpu["model"] and isinstance(cpu["flags"], list) and cpu["cores"] >= 1
    html = (tmp_path / "o" / "tiny" / "latest" / "report.html").read_text()
    assert 'id="cpu"' in html and 'id="frontier"' in html


def test_a_cpu_run_that_leaves_variants_unset_ships_the_faster_of_fp32_and_int8(
    tiny_suite, run_cli, tmp_path
):
    suite = tiny_suite("")
    suite.write_text(suite.read_text().replace('variants = ["fp32"]\n', ""))  # as a user's suite: no variants
    code, out = run_cli(
        "run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu", "-q", "-k", "mnrl"
    )
    assert code == 0, out
    doc = json.loads((tmp_path / "o" / "tiny" / "latest" / "results.json").read_text())
    c = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl")
    rows = {v["variant"]: v for v in c["variants"]}
    assert set(rows) == {"fp32", "int8"}
    usable = {n: r["metrics"]["docs_per_s"] for n, r in rows.items() if n == "fp32" or r["passed"]}
    assert c["variant"] == max(usable, key=usable.get) and rows[c["variant"]]["shipped"]
    assert c["variant_choice"].endswith("([export] variants unset: fp32 and int8, the cpu default)")


@pytest.mark.parametrize(
    "model, expected",
    [
        ("layers = [0, 0]", "models[1].layers: expected distinct layer numbers >= 0"),
        ("layers = [0]\nkeep_layers = 1", "models[1].layers: give layers or keep_layers, not both"),
    ],
)
def test_bad_student_settings_are_exit_4(tiny_suite, run_cli, model, expected):
    suite = tiny_suite(f'[[models]]\nname = "small"\nbase = "x"\n{model}\n')
    code, out = run_cli("check", str(suite))
    assert code == 4 and expected in out, out


def test_a_student_with_more_layers_than_its_base_is_exit_4(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite('[[models]]\nname = "small"\nbase = "{base}"\nkeep_layers = 5\n')
    text = suite.read_text()
    suite.write_text(text.replace("{base}", text.split('base = "', 1)[1].split('"', 1)[0]))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-q", "-k", "small")
    assert code == 4 and "models[1].keep_layers: 5: the base has only 2 layers" in out, out


def test_the_openvino_variant_is_checked_evaluated_gated_and_released(tiny_suite, run_cli, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    suite = tiny_suite(
        export='variants = ["fp32", "openvino-int8"]\nship = "openvino-int8"\nmax_drop = 1.0\n'
    )
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-q", "-k", "mnrl")
    assert code == 0, out
    doc = json.loads((tmp_path / "o" / "tiny" / "latest" / "results.json").read_text())
    cand = next(c for c in doc["candidates"] if c["name"] == "tiny-mnrl")
    row = next(v for v in cand["variants"] if v["variant"] == "openvino-int8")
    assert row["provider"].startswith("openvino") and row["file"].endswith("openvino/model_int8.xml")
    assert row["export_check"]["min_cosine"] > 0.9 and "drop" in row and row["shipped"]
    assert any(g["kind"] == "max_drop" and g.get("against") == "fp32" for g in cand["gates"])
    assert cand["status"] == "passed"  # max_drop = 1.0 and no thresholds: nothing it can fail
    code, out = run_cli("release", str(tmp_path / "o" / "tiny" / "latest"), "--to", str(tmp_path / "art"))
    assert code == 0, out
    manifest = json.loads((tmp_path / "art" / "harness-artifact.json").read_text())
    assert manifest["engine"] == "openvino" and (tmp_path / "art" / "openvino" / "model_int8.bin").is_file()
    (tmp_path / "c.jsonl").write_text('{"_id": "a", "text": "the cat"}\n{"_id": "b", "text": "a dog"}\n')
    code, out = run_cli(
        "encode",
        str(tmp_path / "art"),
        "--corpus",
        str(tmp_path / "c.jsonl"),
        "--out",
        str(tmp_path / "e.parquet"),
    )
    assert code == 0, out


def test_a_student_distilled_from_a_trained_candidate(tiny_suite, run_cli, tmp_path):
    suite = tiny_suite(
        '[[models]]\nname = "small"\nbase = "{base}"\nkeep_layers = 1\ndistill_from = "tiny-mnrl"\n'
    )
    text = suite.read_text()
    suite.write_text(text.replace("{base}", text.split('base = "', 1)[1].split('"', 1)[0]))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-q")
    assert code == 0, out
    assert "distilled from tiny-mnrl on" in out, out
    doc = json.loads((tmp_path / "o" / "tiny" / "latest" / "results.json").read_text())
    small = next(c for c in doc["candidates"] if c["name"] == "small-mnrl")
    assert small["student"]["distilled"]["texts"] > 50 and small["layers"] == 1
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "-q", "-k", "small")
    assert (
        code == 1 and "distill_from = 'tiny-mnrl': that candidate has not been trained in this run" in out
    ), out


def test_distilling_from_a_later_candidate_is_exit_4(tiny_suite, run_cli):
    suite = tiny_suite(
        '[[models]]\nname = "small"\nbase = "x"\nkeep_layers = 1\ndistill_from = "small-mnrl"\n'
    )
    code, out = run_cli("check", str(suite))
    assert (
        code == 4 and "models[1].distill_from: expected a candidate of an earlier [[models]] entry" in out
    ), out


@pytest.mark.integration
def test_the_encode_benchmark_times_students_beside_the_full_model(tiny_model, tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import encode

    from tests.conftest import DATA_DIR

    code = encode.main(
        [
            "--model",
            str(tiny_model),
            "--data",
            str(DATA_DIR),
            "--limit",
            "40",
            "--reps",
            "1",
            "--quality",
            "speed",
            "--variants",
            "fp32,int8",
            "--students",
            "1",
            "--static",
            "distil",
            "--max-seq-length",
            "64",
            "--work",
            str(tmp_path),
        ]
    )
    assert code == 0
    rows = {r["variant"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {
        "st-fp32", "onnx-fp32", "onnx-int8", "l1-st-fp32", "l1-onnx-fp32", "l1-onnx-int8", "static-numpy",
        "static-st",
    }  # fmt: skip
    assert rows["l1-onnx-int8"]["layers"] == 1 and rows["onnx-fp32"]["layers"] == "full"
    kinds = {n: r["kind"] for n, r in rows.items()}
    assert kinds["onnx-int8"] == "transformer" and kinds["l1-st-fp32"] == "student"
    assert (
        kinds["static-numpy"] == kinds["static-st"] == "static"
        and rows["static-numpy"]["ndcg@10"] is not None
    )
    st = rows["st-fp32"]["docs_per_s"]
    for r in rows.values():  # every speed-up is its own speed over plain sentence-transformers' fp32
        assert r["speedup_vs_st_fp32"] == pytest.approx(r["docs_per_s"] / st, rel=0.02, abs=0.006), r
    # the default is the CPU's by the run's rule: the faster of fp32 and int8 within max_drop 0.01
    (default,) = [n for n, r in rows.items() if r["harness_default"]]
    fp32, int8 = rows["onnx-fp32"], rows["onnx-int8"]
    int8_ships = int8["ndcg_drop"] <= 0.01 and int8["docs_per_s"] > fp32["docs_per_s"]
    assert default == ("onnx-int8" if int8_ships else "onnx-fp32")
    assert rows["onnx-int8"]["cpu"]


def test_distillation_targets_are_the_teachers_embeddings(tmp_path):
    """The student learns the teacher's embeddings: on texts it trained on, its cosine to the teacher
    rises from near 0 (another random model) to most of the way; with random targets it could not."""
    from sentence_transformers import SentenceTransformer

    from harness.train.student import distill, make_student
    from tests.conftest import _tiny_model, synthetic_pairs

    teacher = _tiny_model(tmp_path / "teacher", seed=1)
    make_student(_tiny_model(tmp_path / "base", seed=0), tmp_path / "student", None, 1)
    rows = synthetic_pairs(120, 0)
    texts = [r["query"] for r in rows] + [r["document"] for r in rows]
    sample = texts[::7]

    def cosine(folder) -> float:
        a = SentenceTransformer(str(folder), device="cpu").encode(sample, normalize_embeddings=True)
        b = SentenceTransformer(str(teacher), device="cpu").encode(sample, normalize_embeddings=True)
        return float((a * b).sum(axis=1).mean())

    before = cosine(tmp_path / "student")
    info = distill(tmp_path / "student", teacher, texts, tmp_path / "distilled", "cpu", 64, 10, 16, 0)
    after = cosine(tmp_path / "distilled")
    assert info["texts"] == len(texts) and info["teacher"] == str(teacher)
    assert before < 0.3 and after > 0.6, (before, after)
