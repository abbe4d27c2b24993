"""Fuzzing the suite loader: whatever the input, it returns a Suite or raises ConfigError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.suite.load import TABLES, build_suite, load_suite
from harness.suite.schema import Suite

KEYS = list(TABLES) + [
    "profiles",
    "cpu",
    "source",
    "name",
    "base",
    "type",
    "epochs",
    "batch_size",
    "metric",
    "min",
    "min_gain",
    "k_values",
    "evaluators",
    "plugins",
    "cpu_profile",
    "dev_fraction",
    "against",
]
scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(["beir", "cpu", "ndcg@10", "MultipleNegativesRankingLoss", "baseline"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=20,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from([None, "cpu", "gpu"]), st.sampled_from([None, "cpu", "cuda"]))
def test_build_suite_only_raises_config_error(raw, profile, device):
    try:
        assert isinstance(build_suite(raw, "fuzz.toml", profile, device), Suite)
    except ConfigError as e:
        assert e.problems and all(p.file == "fuzz.toml" for p in e.problems if p.file)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_file_only_raises_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_suite(path)
    except ConfigError:
        pass
