"""Suite loading: types, unknown keys, profiles, and problems reported all at once with their TOML path."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.suite.load import load_suite, merge

MINIMAL = """
[data]
source = "beir"
dataset = "scifact"
[[models]]
name = "m"
base = "some/model"
[[losses]]
name = "l"
type = "MultipleNegativesRankingLoss"
"""


def problems(tmp_path, text, **kw) -> list[str]:
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_suite(p, **kw)
    return [str(x) for x in e.value.problems]


def test_minimal_suite_gets_defaults(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(MINIMAL)
    s = load_suite(p)
    assert s.name == "mine"
    assert s.training.epochs == 1 and s.evaluation.primary_metric == "ndcg@10"
    assert s.data.options == {"dataset": "scifact"}
    assert s.data.dev_fraction == 0.15


def test_every_problem_is_reported_at_once_with_file_and_path(tmp_path):
    text = MINIMAL.replace(
        "[[models]]",
        '[training]\nepochs = "three"\nlearning_rat = 1e-5\n[evaluation]\nk_values = []\n[[models]]',
    )
    text += '[[thresholds]]\nmetric = "ndcg@10"\n'
    found = problems(tmp_path, text)
    joined = "\n".join(found)
    assert "training.epochs: expected an integer, got a string ('three')" in joined
    assert "training.learning_rat: unknown key; did you mean 'learning_rate'?" in joined
    assert "evaluation.k_values: expected a non-empty list" in joined
    assert "thresholds[0]: expected one of the keys min, max, min_gain" in joined
    assert all(x.startswith(str(tmp_path / "s.toml")) for x in found)
    assert len(found) == 4


def test_typo_in_a_table_with_plugin_options_is_still_caught(tmp_path):
    found = problems(tmp_path, MINIMAL.replace("source =", "sourc ="))
    assert any("data.sourc: unknown key; did you mean 'source'?" in f for f in found)
    assert any("data.source: missing required key" in f for f in found)


def test_out_of_range_and_choices(tmp_path):
    found = problems(
        tmp_path, MINIMAL + "[training]\nwarmup_ratio = 1.5\nprecision = 'fp64'\nbatch_size = 1\n"
    )
    joined = "\n".join(found)
    assert "training.warmup_ratio: expected a number in [0, 1), got 1.5" in joined
    assert "training.precision: expected one of 'auto', 'fp32', 'fp16', 'bf16'" in joined
    assert "training.batch_size: expected >= 2" in joined


def test_invalid_toml_names_the_file(tmp_path):
    found = problems(tmp_path, "[data\nsource=1")
    assert "invalid TOML" in found[0] and "s.toml" in found[0]


def test_duplicate_names(tmp_path):
    found = problems(tmp_path, MINIMAL + '[[models]]\nname = "m"\nbase = "x"\n')
    assert any("models[1].name: duplicate name 'm' (also models[0])" in f for f in found)


def test_profile_is_merged_and_unknown_profile_is_an_error(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(MINIMAL + "[training]\nepochs = 20\nbatch_size = 64\n[profiles.cpu.training]\nepochs = 1\n")
    s = load_suite(p, profile="cpu")
    assert (s.training.epochs, s.training.batch_size, s.profile) == (1, 64, "cpu")
    assert load_suite(p).training.epochs == 20
    with pytest.raises(ConfigError, match="unknown profile 'gpu'; this suite has \\['cpu'\\]"):
        load_suite(p, profile="gpu")


def test_cpu_profile_applies_automatically_on_cpu(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[suite]\ncpu_profile = "small"\n' + MINIMAL + "[profiles.small.training]\nepochs = 3\n")
    assert load_suite(p, device="cpu").training.epochs == 3
    assert load_suite(p, device="cuda").training.epochs == 1


def test_profile_with_unknown_table(tmp_path):
    found = problems(tmp_path, MINIMAL + "[profiles.cpu.trainig]\nepochs = 1\n")
    assert any("profiles.cpu.trainig: unknown key; did you mean 'training'?" in f for f in found)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_suite(tmp_path / "nope.toml")


def test_merge_replaces_arrays_and_merges_tables():
    assert merge({"a": {"x": 1, "y": 2}, "l": [1, 2]}, {"a": {"y": 3}, "l": [9]}) == {
        "a": {"x": 1, "y": 3},
        "l": [9],
    }


def test_export_variants_are_checked_against_the_device(tmp_path):
    gpu = MINIMAL + '[export]\nvariants = ["fp32", "fp16"]\nship = "fp16"\n'
    found = problems(tmp_path, gpu, device="cpu")
    assert any(
        "export.variants[1]: variant 'fp16' runs on cuda, and this run's device is cpu" in f for f in found
    )
    p = tmp_path / "ok.toml"
    p.write_text(gpu)
    assert load_suite(p, device="cuda").export.shipped == "fp16"
    found = problems(tmp_path, MINIMAL + '[export]\nvariants = ["fp32", "int8", "int4"]\n', device="cpu")
    assert any("export.variants: unknown variant(s) ['int4']" in f for f in found)
    found = problems(tmp_path, MINIMAL + '[export]\nvariants = ["fp32", "int8"]\n', device="cpu")
    assert any("export.ship: missing: variants lists 2, say which one ships" in f for f in found)
    found = problems(tmp_path, MINIMAL + '[export]\nvariants = ["int8"]\nship = "O2"\n', device="cpu")
    assert any(
        "export.ship: expected one of the variants ['int8'] or \"fastest\", got 'O2'" in f for f in found
    )
    p.write_text(MINIMAL + '[export]\nvariants = ["fp32", "int8"]\nship = "fastest"\n')
    assert load_suite(p, device="cpu").export.ship == "fastest"
    p.write_text(MINIMAL + '[export]\nvariants = ["int8"]\n')
    assert load_suite(p, device="cpu").export.built == ["fp32", "int8"]


def test_unset_export_variants_are_the_devices_default(tmp_path):
    """On the CPU fp32 and int8, the faster within max_drop shipping; on CUDA fp32; set ones are kept."""
    p = tmp_path / "s.toml"
    p.write_text(MINIMAL)
    cpu, cuda = load_suite(p, device="cpu").export, load_suite(p, device="cuda").export
    assert (cpu.variants, cpu.ship, cpu.by_device) == (["fp32", "int8"], "fastest", True)
    assert (cuda.variants, cuda.shipped, cuda.by_device) == (["fp32"], "fp32", True)
    p.write_text(MINIMAL + '[export]\nship = "fp32"\n')
    assert load_suite(p, device="cpu").export.built == ["fp32"]
    p.write_text(MINIMAL + '[export]\nvariants = ["fp32"]\n')
    set_ = load_suite(p, device="cpu").export
    assert (set_.built, set_.shipped, set_.by_device) == (["fp32"], "fp32", False)
    found = problems(tmp_path, MINIMAL + '[export]\nship = "int8"\n', device="cpu")
    assert any(
        'export.ship: expected "fp32" or "fastest" while variants is unset (by device), got \'int8\'' in f
        for f in found
    )


def test_set_overrides_the_file_and_the_profile_and_its_mistakes_name_the_option(tmp_path):
    """``--set KEY=VALUE``: a TOML value (a bare word is a string) at a dotted key, over the profile;
    a wrong key or value is reported as the command line's, and nothing else in the file changes."""
    from harness.suite.load import parse_overrides

    p = tmp_path / "s.toml"
    p.write_text(
        MINIMAL
        + "[training]\nepochs = 20\nbatch_size = 64\n[search]\ntrials = 4\nlearning_rate = [1e-5, 1e-4]\n"
        "[profiles.cpu.training]\nepochs = 2\n"
    )
    s = load_suite(
        p,
        "cpu",
        None,
        parse_overrides(["training.epochs=5", "training.max_seq_length=auto", "search.trials=1"]),
    )
    assert (s.training.epochs, s.training.batch_size, s.training.max_seq_length) == (5, 64, "auto")
    assert s.search.trials == 1 and s.overrides == [
        "training.epochs=5",
        "training.max_seq_length=auto",
        "search.trials=1",
    ]
    assert load_suite(p, "cpu").training.epochs == 2
    for given, expected in (
        ("training.epoch=3", "--set training.epoch: unknown key; did you mean 'epochs'?"),
        ("training.epochs=three", "--set training.epochs: expected an integer"),
        ("models.base=x", "--set models.base: models is not a table"),
        (
            "evaluation.max_seq_length=0",
            '--set evaluation.max_seq_length: expected a number of tokens > 0 or "auto"',
        ),
    ):
        with pytest.raises(ConfigError) as e:
            load_suite(p, None, None, parse_overrides([given]))
        assert expected in str(e.value) and str(p) in str(e.value), str(e.value)
    for given in ("epochs", "=3", "training..epochs=3"):
        with pytest.raises(ConfigError, match="--set: .*expected KEY=VALUE"):
            parse_overrides([given])
