"""Suite files: a typed schema, and a loader that reports every problem at once with its TOML path.

Each table of a suite is a dataclass below; each field's type, default and help text is the
documentation of that key (``harness check --keys`` prints it). Unknown keys are errors with a
"did you mean", since a typo silently ignored in a release gate is a wrong green. Tables marked
with ``EXTRA`` pass their other keys on to a plugin (a pair source's or a loss's own options),
which are checked against what that plugin declares once plugins are loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, Problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def key(default: Any = dataclasses.MISSING, help: str = "", check=None, choices=None):
    """Declare a suite key: its default, help text and an optional check returning an error text."""
    meta = {"help": help, "check": check, "choices": choices}
    if isinstance(default, type):  # a table class: an empty table of it
        return field(default_factory=default, metadata=meta)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def positive(v):
    return None if v > 0 else "expected a number > 0"


def non_negative(v):
    return None if v >= 0 else "expected a number >= 0"


def fraction(v):
    return None if 0 <= v < 1 else "expected a number in [0, 1)"


def a_name(v):
    return None if NAME_RE.match(v) else "expected a name of letters, digits, '_', '.', '-'"


def k_list(v):
    return None if v and all(k >= 1 for k in v) else "expected a non-empty list of integers >= 1"


@dataclass
class SuiteTable:
    name: str | None = key(None, "suite name (default: the file name without .toml)", a_name)
    description: str = key("", "one line shown in the report")
    plugins: list[str] = key([], "local plugin files (relative to the suite) or importable module names")
    cpu_profile: str | None = key(None, "profile applied automatically when the run's device is the CPU")


@dataclass
class DataTable:
    EXTRA = "options"
    source: str = key(help="pair source name (see `harness plugins`)")
    train_split: str = key("train", "split whose pairs train the candidates")
    test_split: str = key("test", "held-out split for the final numbers; never used to choose")
    dev_fraction: float = key(0.15, "fraction of train queries carved out as the dev split", fraction)
    dev_corpus_size: int = key(
        0, "documents the dev split retrieves from: its relevant ones plus random others (0: all)", non_negative
    )
    seed: int = key(0, "seed of the dev carve and of the limit_* samples")
    limit_train_pairs: int = key(0, "use at most this many training pairs (0: all)", non_negative)
    limit_test_queries: int = key(0, "evaluate at most this many test queries (0: all)", non_negative)
    limit_corpus: int = key(
        0, "keep every judged document plus random others up to this many (0: whole corpus)", non_negative
    )
    options: dict = key({}, "")


@dataclass
class ModelTable:
    name: str = key(help="short name used in candidate names", check=a_name)
    base: str = key(help="hub id or local path of a sentence-transformers model")
    revision: str | None = key(None, "hub revision (commit, tag or branch)")
    query_prompt: str = key("", "text put before every query (e.g. 'query: ' for e5)")
    document_prompt: str = key("", "text put before every document")


@dataclass
class HardNegativesTable:
    """``[losses.hard_negatives]``: mine hard negatives for this loss's training pairs with
    sentence-transformers' ``mine_hard_negatives`` (before training, cached in the run folder)."""

    num_negatives: int = key(1, "negatives per (query, positive) pair", positive)
    range_min: int = key(0, "skip this many of each query's top-ranked documents (the likeliest unlabelled "
                         "positives)", non_negative)
    range_max: int | None = key(None, "consider only the top this many documents (default: derived from "
                                "num_negatives and the margins)", positive)
    absolute_margin: float | None = key(None, "keep a negative only if its score is below the positive's minus this")
    relative_margin: float | None = key(None, "keep a negative only if its score is below the positive's minus "
                                        "|positive's| times this (0.05: 5% below)", fraction)
    max_score: float | None = key(None, "keep a negative only if its score is at most this")
    sampling: str = key("top", "take the top-ranked candidates in the range, or a random sample of them",
                        choices=("top", "random"))
    model: str = key("base", "the model that mines: 'base' (the candidate's base model), the name of a "
                     "[[models]] entry, the name of another candidate of this suite listed before this one "
                     "(its trained model), or a hub id / local path")
    batch_size: int = key(64, "encoding batch size of the mining model", positive)
    false_negative_share: float = key(0.1, "warn when more than this share of the mined negatives score at "
                                      "least as high as their positive (likely unlabelled positives)", fraction)

    def problems(self):
        if self.range_max is not None and self.range_max - self.range_min < self.num_negatives:
            yield ".range_max", (f"expected range_max - range_min >= num_negatives ({self.num_negatives}), got "
                                 f"{self.range_max} - {self.range_min}")


@dataclass
class LossTable:
    EXTRA = "options"
    name: str = key(help="short name used in candidate names", check=a_name)
    type: str = key(help="loss name (see `harness plugins`), e.g. MultipleNegativesRankingLoss")
    hard_negatives: HardNegativesTable | None = key(None, "mine hard negatives for this loss (a table, see "
                                                    "[losses.hard_negatives])")
    options: dict = key({}, "")


@dataclass
class TrainingTable:
    epochs: int = key(1, "training epochs; the dev split picks the best one", positive)
    batch_size: int = key(32, "pairs per batch (in-batch negatives grow with it)", lambda v: None if v >= 2 else "expected >= 2")
    learning_rate: float = key(2e-5, "peak learning rate", positive)
    warmup_ratio: float = key(0.1, "fraction of steps of linear warm-up", fraction)
    weight_decay: float = key(0.01, "AdamW weight decay", non_negative)
    max_seq_length: int | None = key(None, "truncate training texts to this many tokens (default: the model's)", positive)
    seed: int = key(42, "training seed")
    precision: str = key("auto", "auto: bf16/fp16 on CUDA, fp32 on the CPU", choices=("auto", "fp32", "fp16", "bf16"))
    select: str = key("best_dev", "which epoch is kept: the best on dev, or the last", choices=("best_dev", "last"))
    eval_batch_size: int = key(64, "batch size of the dev evaluation during training", positive)
    processes: int = key(1, "data-parallel training processes of one candidate (DDP via torchrun): one per GPU; "
                         "batch_size is per process", positive)
    seeds: list[int] = key([], "train every candidate once per seed (instead of `seed`): the report gives the mean "
                           "and spread, thresholds gate on the mean or the worst seed, the best seed on dev ships")
    grid: dict = key({}, "settings to try, each a list (e.g. learning_rate = [2e-5, 5e-5]): every combination is "
                     "trained, the best on the dev split wins; the test split never chooses")
    refit: bool = key(False, "once the dev split has chosen (the epoch, a grid's setting), train once more from the base "
                      "model on train + dev for the chosen number of epochs: that model is tested and ships (more "
                      "pairs, the same choices; the test split still never chooses)")
    learning_curve: list[float] = key([], "also train on these fractions of the training pairs (e.g. [0.25, 0.5]) "
                                      "and report the dev metric of each beside 100%: would more data help?",
                                      lambda v: None if all(0 < f < 1 for f in v) and len(set(v)) == len(v)
                                      else "expected distinct fractions in (0, 1)")

    #: the keys a ``[training.grid]`` may vary
    GRID_KEYS = ("epochs", "batch_size", "learning_rate", "warmup_ratio", "weight_decay", "max_seq_length")

    def problems(self):
        for k, values in self.grid.items():
            if k not in self.GRID_KEYS:
                yield f".grid.{k}", f"unknown key{did_you_mean(k, self.GRID_KEYS)} (a grid varies {', '.join(self.GRID_KEYS)})"
            elif not isinstance(values, list) or not values:
                yield f".grid.{k}", f"expected a non-empty list of values, got {_describe(values)}"
            else:
                for i, v in enumerate(values):
                    msg = _check_field(TrainingTable, k, v)
                    if msg:
                        yield f".grid.{k}[{i}]", msg
        if len(set(self.seeds)) != len(self.seeds):
            yield ".seeds", f"expected each seed once, got {self.seeds}"

    def points(self) -> list[dict]:
        """Every combination of the grid's values, in the order the suite lists them ([{}] without a grid)."""
        import itertools

        keys = list(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    @property
    def seed_list(self) -> list[int]:
        return list(self.seeds) or [self.seed]


@dataclass
class EvaluationTable:
    evaluators: list[str] = key(["retrieval"], "evaluators to run (see `harness plugins`)")
    primary_metric: str = key("ndcg@10", "metric that ranks candidates and selects epochs")
    k_values: list[int] = key([1, 3, 5, 10, 100], "cut-offs of the @k metrics", k_list)
    batch_size: int = key(32, "encoding batch size", positive)
    max_seq_length: int | None = key(None, "truncate texts at evaluation (default: the model's own)", positive)


def variant_list(v):
    from harness.export.variants import VARIANTS

    bad = [x for x in v if x not in VARIANTS]
    if bad:
        return f"unknown variant(s) {bad}; expected some of {list(VARIANTS)}"
    if len(set(v)) != len(v):
        return "expected each variant once"
    return None if v else "expected at least one variant"


@dataclass
class ExportTable:
    variants: list[str] = key(["fp32"], "ONNX variants built, checked and evaluated per candidate, each its own row: "
                              "fp32, O1, O2, O3, fp16 (CUDA), int8 (CPU); fp32 is always built, as the reference",
                              variant_list)
    ship: str | None = key(None, "the variant whose numbers gate the candidate and that `harness release` ships "
                           "(required when variants lists more than one)")
    max_drop: float = key(0.01, "largest drop of the primary metric from fp32 a variant may have; more fails its gate",
                          non_negative)
    check_samples: int = key(64, "texts encoded by torch and by each variant to compare their embeddings", positive)
    min_cosine: float = key(0.999, "lowest torch-vs-ONNX cosine of fp32 and O1-O3; lower is an export error", positive)
    min_cosine_reduced: float = key(0.95, "the same for fp16 and int8, whose real test is max_drop", positive)

    def problems(self):
        if self.ship is not None and self.ship not in self.variants:
            yield ".ship", f"expected one of the variants {self.variants}, got {self.ship!r}"
        if self.ship is None and len(self.variants) > 1:
            yield ".ship", f"missing: variants lists {len(self.variants)}, say which one ships"

    @property
    def built(self) -> list[str]:
        """The variants in build order: fp32 first (every other one is measured against it)."""
        return ["fp32"] + [v for v in self.variants if v != "fp32"]

    @property
    def shipped(self) -> str:
        return self.ship or self.variants[0]


@dataclass
class ThresholdTable:
    metric: str = key(help="metric name, e.g. ndcg@10, or docs_per_s / model_mb for speed and size")
    min: float | None = key(None, "the candidate's value must be >= this")
    max: float | None = key(None, "the candidate's value must be <= this")
    min_gain: float | None = key(None, "value minus the reference's must be >= this")
    min_gain_ci: float | None = key(None, "the lower end of the gain's 95% bootstrap interval must be >= this")
    max_drop: float | None = key(None, "the reference's value minus the candidate's must be <= this (non-inferiority)")
    against: str = key("baseline", "reference of min_gain, min_gain_ci and max_drop: the untuned baseline, "
                       "or the --compare run's model", choices=("baseline", "compare"))
    candidates: list[str] = key([], "glob patterns of candidate names it applies to (default: all)")
    seeds: str = key("mean", "with [training] seeds: gate on the mean over the seeds or on the worst seed",
                     choices=("mean", "worst"))

    KINDS = ("min", "max", "min_gain", "min_gain_ci", "max_drop")
    RELATIVE = ("min_gain", "min_gain_ci", "max_drop")

    def problems(self):
        if not any(getattr(self, k) is not None for k in self.KINDS):
            yield "", f"expected one of the keys {', '.join(self.KINDS)}"


@dataclass
class Suite:
    data: DataTable = key(help="[data]")
    models: list[ModelTable] = key(help="[[models]]")
    losses: list[LossTable] = key(help="[[losses]]")
    suite: SuiteTable = key(SuiteTable, "")
    training: TrainingTable = key(TrainingTable, "")
    evaluation: EvaluationTable = key(EvaluationTable, "")
    export: ExportTable = key(ExportTable, "")
    thresholds: list[ThresholdTable] = key([], "")
    profiles: dict = key({}, "named override tables, merged over the suite by --profile NAME")

    # set by the loader, not by the file
    path: Path = field(default=Path("."), metadata={"internal": True})
    profile: str | None = field(default=None, metadata={"internal": True})
    sha256: str = field(default="", metadata={"internal": True})

    @property
    def name(self) -> str:
        return self.suite.name or self.path.stem

    def candidate_names(self) -> set[str]:
        """The name of every candidate the suite declares (see :func:`item_name`)."""
        return {item_name(m, loss) for m in self.models for loss in self.losses}

    def problems(self):
        for table, items in (("models", self.models), ("losses", self.losses)):
            if not items:
                yield table, "expected at least one entry"
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                if item.name in seen:
                    yield f"{table}[{i}].name", f"duplicate name {item.name!r} (also {table}[{seen[item.name]}])"
                seen[item.name] = i


def item_name(model: ModelTable, loss: LossTable | None) -> str:
    """A baseline's or candidate's name in a suite: ``<model>-baseline`` or ``<model>-<loss>``."""
    return f"{model.name}-{'baseline' if loss is None else loss.name}"


# --- loading ---------------------------------------------------------------------------------

_INVALID = object()


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        item = typing.get_args(tp)[0]
        plural = {str: "strings", int: "integers", float: "numbers"}.get(item, "tables")
        return f"a list of {plural}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            dict: "a table", type(None): "nothing"}.get(tp, str(tp))


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def err(self, path: str, message: str) -> object:
        self.problems.append(Problem(self.file, path, message))
        return _INVALID

    def convert(self, value: Any, tp: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if value is None:
                return None
            return self.convert(value, args[0], path) if len(args) == 1 else value
        if origin is list:
            (item_tp,) = typing.get_args(tp)
            if not isinstance(value, list):
                return self.err(path, f"expected {_type_name(tp)}, got {_describe(value)}")
            items = [self.convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
            return _INVALID if any(i is _INVALID for i in items) else items
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                return self.err(path, f"expected a table, got {_describe(value)}")
            return self.table(tp, value, path)
        if tp is dict:
            return value if isinstance(value, dict) else self.err(path, f"expected a table, got {_describe(value)}")
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if tp in (int, float, str, bool) and (type(value) is tp):
            return value
        return self.err(path, f"expected {_type_name(tp)}, got {_describe(value)}")

    def field(self, f: dataclasses.Field, tp, raw: Any, path: str) -> Any:
        """``raw`` as the value of key ``f`` (its type, choices and check), or _INVALID (reported)."""
        value = self.convert(raw, tp, path)
        if value is _INVALID:
            return value
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            return self.err(path, f"expected one of {', '.join(map(repr, choices))}, got {value!r}")
        check = f.metadata.get("check")
        msg = check(value) if check and value is not None else None
        return self.err(path, f"{msg}, got {value!r}") if msg else value

    def table(self, cls, raw: dict, path: str):
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        extra_field = getattr(cls, "EXTRA", None)
        known = [n for n in fields if n != extra_field]
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in raw.items():
            sub = f"{path}.{k}" if path else k
            if k not in known:
                close = difflib.get_close_matches(k, known, n=1, cutoff=0.8)
                if extra_field and not close:
                    extra[k] = v  # a plugin's own option, checked once plugins are loaded
                else:
                    self.err(sub, f"unknown key{did_you_mean(k, known)}")
                continue
            value = self.field(fields[k], hints[k], v, sub)
            if value is not _INVALID:
                values[k] = value
        for name, f in fields.items():
            if name == extra_field or name in raw:
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.err(f"{path}.{name}" if path else name, f"missing required key ({_type_name(hints[name])})")
        if extra_field:
            values[extra_field] = extra
        try:
            obj = cls(**values)
        except TypeError:  # a required key was missing or invalid: already reported
            return _INVALID
        for sub, message in obj.problems() if hasattr(obj, "problems") else ():
            self.err(f"{path}{sub}", message)
        return obj


def _check_field(cls, name: str, value: Any) -> str | None:
    """The error text for ``value`` as key ``name`` of table ``cls`` (type, choices and check), or None."""
    b = _Builder("")
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return b.problems[0].message if b.field(f, typing.get_type_hints(cls)[name], value, name) is _INVALID else None


def did_you_mean(word: str, candidates) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(sorted(candidates))}"


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} ({text if len(text) < 40 else text[:37] + '...'})"


def merge(base: dict, override: dict) -> dict:
    """Deep-merge ``override`` over ``base``: tables merge key by key, anything else is replaced."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_toml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(Problem(str(path), "", "no such file"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(Problem(str(path), "", f"cannot read: {e}"))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(Problem(str(path), "", f"invalid TOML: {e}"))


TABLES = ("suite", "data", "models", "losses", "training", "evaluation", "export", "thresholds")


def load_suite(path: Path | str, profile: str | None = None, device: str | None = None) -> Suite:
    """Read and type-check one suite file, with ``profile`` (or the suite's ``cpu_profile`` when
    ``device`` is ``"cpu"``) merged over it. Raises :class:`ConfigError` listing every problem."""
    import hashlib

    path = Path(path)
    suite = build_suite(read_toml(path), str(path), profile, device)
    suite.path = path
    suite.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return suite


def build_suite(raw: dict, file: str, profile: str | None = None, device: str | None = None) -> Suite:
    """Type-check a parsed suite (see :func:`load_suite`)."""
    b = _Builder(file)
    profiles = raw.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise ConfigError(Problem(file, "profiles", "expected tables [profiles.NAME]"))
    for pname, ptable in profiles.items():
        for k in ptable:
            if k not in TABLES:
                b.err(f"profiles.{pname}.{k}", f"unknown key{did_you_mean(k, TABLES)}")
    chosen = profile
    auto = raw.get("suite", {}).get("cpu_profile") if isinstance(raw.get("suite"), dict) else None
    if chosen is None and device == "cpu" and isinstance(auto, str):
        chosen = auto
    if chosen is not None:
        if chosen not in profiles:
            where = "suite.cpu_profile" if profile is None else ""
            b.err(where, f"unknown profile {chosen!r}; this suite has {sorted(profiles) or 'no profiles'}")
        else:
            raw = merge(raw, profiles[chosen])
    suite = b.table(Suite, raw, "")
    if suite is not _INVALID and device is not None:
        from harness.export.variants import VARIANTS

        for i, v in enumerate(suite.export.variants):
            if device not in VARIANTS[v].devices:
                b.err(f"export.variants[{i}]", f"variant {v!r} runs on {'/'.join(VARIANTS[v].devices)}, and this run's "
                      f"device is {device}; list it in a profile for that device")
    if b.problems or suite is _INVALID:
        raise ConfigError(b.problems)
    suite.profile = chosen
    return suite


def describe_keys() -> str:
    """Every suite key with its type, default and help (for ``harness check --keys`` and the README)."""
    lines = []
    for table, cls in (("suite", SuiteTable), ("data", DataTable), ("models", ModelTable), ("losses", LossTable),
                       ("losses.hard_negatives", HardNegativesTable), ("training", TrainingTable),
                       ("evaluation", EvaluationTable), ("export", ExportTable), ("thresholds", ThresholdTable)):
        hints = typing.get_type_hints(cls)
        header = f"[[{table}]]" if table in ("models", "losses", "thresholds") else f"[{table}]"
        lines.append(header)
        for f in dataclasses.fields(cls):
            if f.name == getattr(cls, "EXTRA", None):
                lines.append("  ...            other keys are the pair source's / loss's own options")
                continue
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                default = "unset by default" if value is None else f"default {json.dumps(value)}"  # as TOML writes it
            else:
                default = "required"
            lines.append(f"  {f.name} ({_type_name(hints[f.name])}, {default}): {f.metadata.get('help', '')}")
    return "\n".join(lines)
