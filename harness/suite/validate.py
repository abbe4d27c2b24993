"""Checks of a typed suite against what the loaded plugins provide (sources, options, losses,
evaluators, metrics). Every problem is collected; nothing here loads data or models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.api import Option, suite_path
from harness.core.metrics import MEASURED
from harness.errors import DataError, Problem
from harness.suite.columns import missing_columns
from harness.suite.keys import did_you_mean
from harness.suite.schema import Suite

if TYPE_CHECKING:  # an annotation only: the plugin manager imports the suite, not the other way round
    from harness.plugins import Registry


def _check_options(
    file: str,
    table: str,
    given: dict,
    declared: dict[str, Option] | tuple[str, ...],
    owner: str,
    suite_dir: Path | None = None,
) -> list[Problem]:
    problems = []
    names = list(declared)
    for k, v in given.items():
        if k not in declared:
            problems.append(Problem(file, f"{table}.{k}", f"unknown key for {owner}{did_you_mean(k, names)}"))
        elif isinstance(declared, dict):
            opt = declared[k]
            ok_types = opt.type if isinstance(opt.type, tuple) else (opt.type,)
            if float in ok_types and isinstance(v, int) and not isinstance(v, bool):
                continue
            if not isinstance(v, ok_types) or (isinstance(v, bool) and bool not in ok_types):
                want = " or ".join(t.__name__ for t in ok_types)
                problems.append(
                    Problem(file, f"{table}.{k}", f"expected {want}, got {type(v).__name__} ({v!r})")
                )
            elif opt.choices and v not in opt.choices:
                problems.append(
                    Problem(file, f"{table}.{k}", f"expected one of {list(opt.choices)}, got {v!r}")
                )
            elif opt.path and suite_dir is not None and isinstance(v, str):
                problems += [Problem(file, f"{table}.{k}", m) for m in _path_problem(suite_dir, v, opt.path)]
    if isinstance(declared, dict):
        for k, opt in declared.items():
            if opt.required and k not in given:
                problems.append(Problem(file, f"{table}.{k}", f"missing required key for {owner}"))
    return problems


def _path_problem(suite_dir: Path, value: str, kind: str) -> list[str]:
    """What is wrong with path option ``value`` that must name an existing ``kind`` (file or folder)."""
    try:
        path = suite_path(suite_dir, value)
    except DataError as e:
        return [str(e)]
    if not path.exists():
        return [f"no such {kind}: {path}"]
    if (kind == "folder") != path.is_dir():
        return [f"expected a {kind}, got a {'folder' if path.is_dir() else 'file'}: {path}"]
    return []


def source_options(suite: Suite, registry: Registry) -> dict:
    """The pair source's options with its defaults filled in."""
    source = registry.pair_sources[suite.data.source]
    return {k: suite.data.options.get(k, opt.default) for k, opt in source.options.items()}


def shippable_names(suite: Suite) -> list[str]:
    """The rows ``[suite] ship`` may name: every candidate, and every baseline's and candidate's hybrid."""
    from harness.core.names import hybrid_name
    from harness.suite.schema import item_name

    dense = [item_name(m, loss, s) for m in suite.models for loss, s in suite.candidate_losses()]
    bases = [item_name(m, None) for m in suite.models]
    hybrids = [r for r in suite.references if r.type == "hybrid"]
    return dense + [hybrid_name(n, r, suite) for n in bases + dense for r in hybrids]


def check_suite(suite: Suite, registry: Registry) -> list[Problem]:
    file = str(suite.path)
    problems: list[Problem] = []
    if suite.suite.ship != "best" and suite.suite.ship not in (names := shippable_names(suite)):
        problems.append(
            Problem(
                file,
                "suite.ship",
                f"expected 'best' or the name of a row of this suite, got {suite.suite.ship!r}"
                f"{did_you_mean(suite.suite.ship, names)}",
            )
        )
    source = registry.pair_sources.get(suite.data.source)
    if source is None:
        problems.append(
            Problem(
                file,
                "data.source",
                "unknown pair source "
                f"{suite.data.source!r}{did_you_mean(suite.data.source, registry.pair_sources)}",
            )
        )
    else:
        problems += _check_options(
            file,
            "data",
            suite.data.options,
            source.options,
            f"pair source {source.name!r}",
            suite.path.parent,
        )
    for i, loss in enumerate(suite.losses):
        spec = registry.losses.get(loss.type)
        if spec is None:
            problems.append(
                Problem(
                    file,
                    f"losses[{i}].type",
                    f"unknown loss {loss.type!r}{did_you_mean(loss.type, registry.losses)}",
                )
            )
        else:
            problems += _check_options(
                file, f"losses[{i}]", loss.options, spec.accepted_options(), f"loss {loss.type!r}"
            )
            problems += [Problem(file, f"losses[{i}].{k}", m) for k, m in spec.problems(loss.options)]
            problems += [
                Problem(
                    file,
                    f"losses[{i}].{k}",
                    f"missing required key for loss {loss.type!r} (a model name or path)",
                )
                for k in spec.model_options
                if k not in loss.options
            ]
            gives = source is not None and source.gives_negatives
            missing = missing_columns(
                spec, loss.options, loss.hard_negatives is not None, negatives=None if gives else False
            )
            if missing:
                problems.append(Problem(file, f"losses[{i}]", missing))
        if (
            loss.hard_negatives is not None
        ):  # a candidate that mines must be trained after the one it mines with
            later = [f"{m.name}-{other.name}" for m in suite.models for other in suite.losses[i:]]
            if loss.hard_negatives.model in later:
                problems.append(
                    Problem(
                        file,
                        f"losses[{i}].hard_negatives.model",
                        f"candidate {loss.hard_negatives.model!r} is trained after this one (or is "
                        "this one): list its loss before this loss",
                    )
                )
    if suite.data.dev_fraction == 0:
        for k, v in (
            ("training.grid", suite.training.grid),
            ("search", suite.search),
            ("training.learning_curve", suite.training.learning_curve),
            ("training.refit", suite.training.refit),
        ):
            if v:
                problems.append(
                    Problem(
                        file,
                        k,
                        "needs a dev split to measure on (the test split never "
                        "chooses): set data.dev_fraction > 0",
                    )
                )
    produced: set[str] = set(MEASURED)  # every candidate's speed and size
    all_known = True
    for i, name in enumerate(suite.evaluation.evaluators):
        ev = registry.evaluators.get(name)
        if ev is None:
            all_known = False
            problems.append(
                Problem(
                    file,
                    f"evaluation.evaluators[{i}]",
                    f"unknown evaluator {name!r}{did_you_mean(name, registry.evaluators)}",
                )
            )
        else:
            produced |= set(ev.metric_names(suite.evaluation.k_values))
    if not suite.evaluation.evaluators:
        problems.append(Problem(file, "evaluation.evaluators", "expected at least one evaluator"))
    retrieval = registry.evaluators.get("retrieval")
    for i, ood in enumerate(suite.evaluation.out_of_domain):
        where = f"evaluation.out_of_domain[{i}]"
        problems += [
            Problem(file, f"{where}.suite", m) for m in _path_problem(suite.path.parent, ood.suite, "file")
        ]
        if [o.name for o in suite.evaluation.out_of_domain].count(ood.name) > 1:
            problems.append(Problem(file, f"{where}.name", f"duplicate name {ood.name!r}"))
        if retrieval is not None:
            produced |= {f"{ood.name}/{m}" for m in retrieval.metric_names(suite.evaluation.k_values)}
    if all_known:  # with an unknown evaluator, which metrics exist is unknown too
        for path, metric in [("evaluation.primary_metric", suite.evaluation.primary_metric)] + [
            (f"thresholds[{i}].metric", t.metric) for i, t in enumerate(suite.thresholds)
        ]:
            if metric not in produced:
                problems.append(
                    Problem(
                        file,
                        path,
                        f"no evaluator produces the metric {metric!r}{did_you_mean(metric, produced)}",
                    )
                )
    return problems
