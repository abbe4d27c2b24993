"""Reading suite files: TOML, profiles merged over the suite (``--profile`` or ``cpu_profile``),
type-checked into :class:`harness.suite.schema.Suite` with every problem reported at once."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path

from harness.errors import ConfigError, Problem
from harness.suite.keys import INVALID, Builder, did_you_mean, type_name
from harness.suite.schema import (
    DataTable,
    EvaluationTable,
    ExportTable,
    OutOfDomainTable,
    ReferenceTable,
    Suite,
    SuiteTable,
    ThresholdTable,
)
from harness.suite.search_table import SearchTable
from harness.suite.training_tables import HardNegativesTable, LossTable, ModelTable, TrainingTable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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


TABLES = (
    "suite",
    "data",
    "models",
    "losses",
    "training",
    "search",
    "evaluation",
    "export",
    "thresholds",
    "references",
)


def parse_overrides(texts: list[str]) -> list[tuple[str, object]]:
    """``--set KEY=VALUE`` (repeatable): ``KEY`` a dotted TOML path (``training.epochs``,
    ``search.trials``), ``VALUE`` a TOML value (``4``, ``1e-4``, ``true``, ``[1, 2]``,
    ``{low = 1e-5, high = 1e-3}``); a value that is no TOML, such as ``auto``, is a string."""
    out = []
    for text in texts:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key or not all(part.strip() for part in key.split(".")):
            raise ConfigError(
                Problem("--set", text, "expected KEY=VALUE with a dotted key, e.g. training.epochs=4")
            )
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()
        out.append((key, parsed))
    return out


def apply_overrides(raw: dict, overrides: list[tuple[str, object]], file: str) -> dict:
    """``raw`` with each ``--set`` value in place (after the profile: the command line wins). A key
    must lead through tables: ``models`` and the other arrays of tables are set in the file."""
    for key, value in overrides:
        node, parts = raw, key.split(".")
        for i, part in enumerate(parts[:-1]):
            node = node.get(part, {})
            if not isinstance(node, dict):
                raise ConfigError(
                    Problem(
                        file,
                        f"--set {key}",
                        f"{'.'.join(parts[: i + 1])} is not a table (an array of tables is set in the file)",
                    )
                )
        nested: object = value
        for part in reversed(parts):
            nested = {part: nested}
        raw = merge(raw, nested)
    return raw


def from_command_line(problem: Problem, overrides: list[tuple[str, object]]) -> Problem:
    """``problem`` marked as the command line's when its key is one ``--set`` gave."""
    for key, _ in overrides:
        if problem.path == key or problem.path.startswith((f"{key}.", f"{key}[")):
            return Problem(problem.file, f"--set {problem.path}", problem.message)
    return problem


def load_suite(
    path: Path | str, profile: str | None = None, device: str | None = None, overrides: list | None = None
) -> Suite:
    """Read and type-check one suite file, with ``profile`` (or the suite's ``cpu_profile`` when
    ``device`` is ``"cpu"``) merged over it, then ``overrides`` (:func:`parse_overrides`). Raises
    :class:`ConfigError` listing every problem."""
    import hashlib

    path = Path(path)
    suite = build_suite(read_toml(path), str(path), profile, device, overrides or [])
    suite.path = path
    suite.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return suite


def build_suite(
    raw: dict, file: str, profile: str | None = None, device: str | None = None, overrides: list | None = None
) -> Suite:
    """Type-check a parsed suite (see :func:`load_suite`)."""
    b = Builder(file)
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
    raw = apply_overrides(raw, overrides or [], file)
    suite = b.table(Suite, raw, "")
    if suite is not INVALID:
        suite.export = suite.export.for_device(device or "cpu")
    if suite is not INVALID and device == "cpu" and suite.training.precision == "fp16":
        b.err(
            "training.precision",
            "fp16 mixed precision needs CUDA, and this run's device is cpu: bf16 (fast on CPUs with "
            "AVX-512 BF16 or AMX) or fp32, or set it in a profile for the GPU",
        )
    if suite is not INVALID and device is not None:
        from harness.core.variants import VARIANTS

        for i, v in enumerate(suite.export.variants):
            if device not in VARIANTS[v].devices:
                b.err(
                    f"export.variants[{i}]",
                    f"variant {v!r} runs on {'/'.join(VARIANTS[v].devices)}, and this run's "
                    f"device is {device}; list it in a profile for that device",
                )
    if b.problems or suite is INVALID:
        raise ConfigError([from_command_line(p, overrides or []) for p in b.problems])
    suite.profile = chosen
    suite.overrides = [f"{k}={v}" for k, v in overrides or []]
    return suite


def describe_keys() -> str:
    """Every suite key with its type, default and help (for ``harness check --keys`` and the README)."""
    lines = []
    for table, cls in (
        ("suite", SuiteTable),
        ("data", DataTable),
        ("models", ModelTable),
        ("losses", LossTable),
        ("losses.hard_negatives", HardNegativesTable),
        ("training", TrainingTable),
        ("search", SearchTable),
        ("evaluation", EvaluationTable),
        ("export", ExportTable),
        ("thresholds", ThresholdTable),
        ("references", ReferenceTable),
        ("evaluation.out_of_domain", OutOfDomainTable),
    ):
        hints = typing.get_type_hints(cls)
        header = (
            f"[[{table}]]"
            if table in ("models", "losses", "thresholds", "references", "evaluation.out_of_domain")
            else f"[{table}]"
        )
        lines.append(header)
        if table == "references":
            lines.append(
                '  (a suite that lists none has one: name = "bm25", type = "bm25"; '
                "`references = []` for none)"
            )
        for f in dataclasses.fields(cls):
            if f.name == getattr(cls, "EXTRA", None):
                lines.append("  ...            other keys are the pair source's / loss's own options")
                continue
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                shown = json.dumps(
                    value, default=lambda o: {k: v for k, v in vars(o).items() if v is not None}
                )
                default = "unset by default" if value is None else f"default {shown}"  # as TOML writes it
            else:
                default = "required"
            lines.append(f"  {f.name} ({type_name(hints[f.name])}, {default}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


def keys_document() -> str:
    """``docs/suite-keys.md``: the output of ``harness check --keys`` as a page (a test keeps the
    file equal to this; regenerate it with ``python -m harness.suite.load > docs/suite-keys.md``)."""
    return (
        "# Suite keys\n\n"
        "Every key of a suite file, with its type, default and meaning: the output of `harness check "
        "--keys`,\n"
        "generated from the schema (`harness/suite/schema.py`), so it cannot drift from what the harness\n"
        "accepts (a test compares them). Regenerate it with `python -m harness.suite.load > "
        "docs/suite-keys.md`.\n"
        "A table marked `...` passes its other keys to its plugin: `harness plugins` lists each pair "
        "source's\n"
        "and loss's own options. An annotated suite: [suite.md](suite.md).\n\n"
        "```\n" + describe_keys() + "\n```\n"
    )


if __name__ == "__main__":
    print(keys_document(), end="")
