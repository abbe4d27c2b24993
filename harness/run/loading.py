"""Before anything trains: each suite's run folder, its data loaded and prepared, its base models
resolved, and every problem found (bad data, unknown models, losses the data cannot feed) raised
at once as one usage error."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from harness.api import LoadContext
from harness.core.suiterun import SuiteRun
from harness.data.prepare import Prepared, prepare
from harness.errors import ConfigError, DataError, HarnessError, Problem
from harness.plugins import Plugins
from harness.run.executors import SHARED_MARK
from harness.run.fitting import auto_length, memory_problems
from harness.run.options import RunOptions
from harness.run.run_dir import LOCK, RunLock, claim
from harness.suite.collect import Item
from harness.suite.schema import Suite
from harness.suite.validate import source_options


class Preparation:
    """Prepares the runs of ``suites`` for ``items`` with ``options``; ``sequential``: whether the
    executor runs items one after another here (else a loss cannot mine with another candidate)."""

    def __init__(self, plugins: Plugins, options: RunOptions, sequential: bool):
        self.plugins = plugins
        self.options = options
        self.sequential = sequential
        self.warn = lambda message: plugins.hook.harness_warning(message=message, item=None)

    def runs(self, suites: list[Suite], items: list[Item]) -> list[SuiteRun]:
        """The prepared runs, their folders claimed and locked; on a usage error, none is left behind."""
        runs: list[SuiteRun] = []
        try:
            return self._runs(suites, items, runs)
        except BaseException:
            for run in runs:
                release(run, remove_if_new=True)
            raise

    def _runs(self, suites: list[Suite], items: list[Item], runs: list[SuiteRun]) -> list[SuiteRun]:
        problems = []
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        by_suite: dict[str, list[Item]] = {}
        for item in items:
            by_suite.setdefault(item.suite.name, []).append(item)
        for suite in suites:
            if suite.name not in by_suite:
                continue
            resumed = self.resumed_dir(suite)
            folder = resumed or claim(self.options.out_dir / suite.name, stamp)
            run = SuiteRun(
                suite, by_suite[suite.name], folder, previous=previous_results(folder), new=resumed is None
            )
            runs.append(run)  # before the lock: should taking it fail, the folder is still cleaned up
            run.lock = RunLock(folder).acquire()
            try:
                run.data = self.load_data(suite)
                problems += self.column_problems(suite, run.data)
                problems += self.executor_problems(suite)
            except DataError as e:
                problems += [Problem(str(suite.path), "data", m) for m in e.messages]
            except Exception as e:  # noqa: BLE001 - a plugin's bug: this suite's items error, the others run
                owner = self.plugins.registry.owner.get(("pair_sources", suite.data.source), "?")
                run.load_error = (
                    f"pair source {suite.data.source!r} (plugin {owner}) raised {type(e).__name__}: {e}"
                )
                self.warn(f"{suite.name}: {run.load_error}")
            problems += self.out_of_domain(suite, run)
            for i, model in enumerate(suite.models):
                if not any(it.model is model for it in run.items):
                    continue
                try:
                    run.models[model.name] = self.plugins.resolve_model(model.base, model.revision)
                except HarnessError as e:
                    problems.append(Problem(str(suite.path), f"models[{i}].base", str(e)))
                    continue
                problems += student_problems(suite, i, run.models[model.name].path)
            for item in run.items:
                if item.reference is not None:
                    try:
                        run.models[item.model.name] = self.plugins.resolve_model(
                            item.model.base, item.model.revision
                        )
                    except HarnessError as e:
                        i = suite.references.index(item.reference)
                        problems.append(Problem(str(suite.path), f"references[{i}].model", str(e)))
        if not problems:
            for run in runs:
                auto_length(run, self.warn)
                if self.sequential:  # other executors' machines are probed where they train
                    problems += memory_problems(run, self.plugins, self.options.device)
        if problems:
            raise ConfigError(problems)
        for run in runs:
            if run.data is not None:
                data_ready(
                    self.plugins,
                    run.suite,
                    run.data,
                    {m.name: run.models[m.name].path for m in run.suite.models if m.name in run.models},
                )
                for w in run.data.warnings + history_warnings(run):
                    self.warn(f"{run.suite.name}: {w}")
        return runs

    def load_data(self, suite: Suite) -> Prepared:
        return load_data(self.plugins, suite, self.options.device)

    def out_of_domain(self, suite: Suite, run: SuiteRun) -> list[Problem]:
        """Load the test data of each ``[[evaluation.out_of_domain]]`` suite into ``run.out_of_domain``."""
        from harness.api import suite_path
        from harness.suite.load import load_suite

        problems = []
        for i, ood in enumerate(suite.evaluation.out_of_domain):
            where = f"evaluation.out_of_domain[{i}]"
            try:
                other = load_suite(suite_path(suite.path.parent, ood.suite), device=self.options.device)
                self.plugins.load_suite_plugins(other)
                run.out_of_domain[ood.name] = self.load_data(other)
            except ConfigError as e:
                problems += [Problem(str(suite.path), where, f"{ood.suite}: {p}") for p in e.problems]
            except DataError as e:
                problems += [Problem(str(suite.path), where, f"{ood.suite}: {m}") for m in e.messages]
            except KeyError as e:  # its pair source is not registered
                problems.append(Problem(str(suite.path), where, f"{ood.suite}: unknown pair source {e}"))
        return problems

    def column_problems(self, suite: Suite, data: Prepared) -> list[Problem]:
        """Losses the loaded data cannot feed (scored pairs from ungraded pairs), before any training."""
        from harness.data.trainset import graded, has_negatives
        from harness.suite.columns import missing_columns

        out = []
        for i, loss in enumerate(suite.losses):
            spec = self.plugins.registry.losses[loss.type]
            missing = missing_columns(
                spec, loss.options, loss.hard_negatives is not None, graded(data), has_negatives(data)
            )
            if missing:
                out.append(Problem(str(suite.path), f"losses[{i}]", missing))
        return out

    def executor_problems(self, suite: Suite) -> list[Problem]:
        """Mining with another candidate's model needs that candidate trained first, in this process."""
        if self.sequential:
            return []
        names = suite.candidate_names()
        return [
            Problem(
                str(suite.path),
                f"losses[{i}].hard_negatives.model",
                f"mining with the candidate {loss.hard_negatives.model!r} needs it trained first: run this "
                "suite with --executor local",
            )
            for i, loss in enumerate(suite.losses)
            if loss.hard_negatives is not None and loss.hard_negatives.model in names
        ] + [
            Problem(
                str(suite.path),
                f"models[{i}].distill_from",
                f"distilling from the candidate {m.distill_from!r} needs it trained first: run this suite "
                "with "
                "--executor local",
            )
            for i, m in enumerate(suite.models)
            if m.distill_from is not None
        ]

    def resumed_dir(self, suite: Suite) -> Path | None:
        """With --resume: the suite's newest run folder (finished steps in it are re-used)."""
        if not self.options.resume:
            return None
        folder = self.options.out_dir / suite.name
        runs = (
            sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            if folder.is_dir()
            else []
        )
        if not runs:
            self.warn(f"{suite.name}: --resume: no earlier run in {folder}, starting anew")
            return None
        return runs[-1]


def load_data(plugins: Plugins, suite: Suite, device: str) -> Prepared:
    """``suite``'s data from its pair source, cleaned and split (:func:`harness.data.prepare.prepare`)."""
    source = plugins.registry.pair_sources[suite.data.source]
    data_dir = os.environ.get("HARNESS_DATA_DIR")
    cache = Path(os.environ.get("HARNESS_CACHE_DIR", Path.home() / ".cache" / "harness"))
    ctx = LoadContext(
        Path(data_dir) if data_dir else None,
        suite.path.parent.resolve(),
        cache,
        (suite.data.train_split, suite.data.test_split),
        lambda name: plugins.resolve_model(name, None).path,
        device,
    )
    return prepare(source.load(source_options(suite, plugins.registry), ctx), suite.data)


def release(run: SuiteRun, remove_if_new: bool = False) -> None:
    """Unlock ``run``'s folder; ``remove_if_new``: remove it too when this session created it and
    wrote nothing into it (a run stopped by a usage error leaves no empty folder)."""
    if run.lock is not None:
        run.lock.release()
        run.lock = None
    if remove_if_new and run.new:
        for mark in (LOCK, SHARED_MARK):
            (run.run_dir / mark).unlink(missing_ok=True)
        try:
            run.run_dir.rmdir()
            run.run_dir.parent.rmdir()  # the suite's folder, when this run was its first
        except OSError:  # not empty: something was written (or it holds other runs), keep it
            pass


def previous_results(folder: Path) -> dict:
    """The candidates of the run in ``folder`` by name (the run being resumed), or {}."""
    if not (folder / "results.json").is_file():
        return {}
    try:
        old = json.loads((folder / "results.json").read_text())
        return {c["name"]: c for c in old.get("candidates", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def history_warnings(run: SuiteRun) -> list[str]:
    """The report's history compares runs: say when the last finished one had other data or settings."""
    try:
        last = json.loads((run.run_dir.parent / "latest" / "results.json").read_text())
    except (OSError, ValueError):
        return []
    out = []
    if not isinstance(last, dict) or last.get("run_id") == run.run_dir.name:
        return out
    if (last.get("data") or {}).get("fingerprint") not in (None, run.data.fingerprint):
        out.append(
            f"the previous run {last.get('run_id')} used other data (fingerprint "
            f"{last['data']['fingerprint']} vs {run.data.fingerprint}): the history mixes datasets"
        )
    if (
        last.get("suite_sha256") not in (None, run.suite.sha256)
        or last.get("profile") != run.suite.profile
        or last.get("overrides", []) != run.suite.overrides
    ):
        out.append(
            f"the previous run {last.get('run_id')} used other suite settings (suite file, profile "
            "or --set changed): compare the history with care"
        )
    return out


def data_ready(plugins: Plugins, suite: Suite, data: Prepared, models: dict[str, Path]) -> None:
    """Add to the cleaning report the share of the corpus and of the queries each base model (``models``:
    name -> folder) cuts at the suite's training and evaluation max_seq_length (see
    :func:`harness.data.cleaning.length_report`), then tell the plugins the data is ready."""
    from harness.data.cleaning import length_report

    queries = [t for s in (data.train, data.dev, data.test) for t in s.queries["text"].to_list()]
    data.cleaning["too_long"] = length_report(
        data.corpus["text"].to_list(),
        queries,
        models,
        {"training": suite.training.max_seq_length, "evaluation": suite.evaluation.max_seq_length},
    )
    plugins.hook.harness_data_ready(suite=suite, data=data)


def student_problems(suite: Suite, i: int, base: Path) -> list[Problem]:
    """A student's layers that its base does not have (known once the base is on disk)."""
    from harness.train.student import layer_count

    model = suite.models[i]
    total = layer_count(base) if model.student else None
    if total is None:
        return []
    if model.keep_layers is not None and model.keep_layers >= total:
        return [
            Problem(
                str(suite.path),
                f"models[{i}].keep_layers",
                f"{model.keep_layers}: the base has only {total} layers (a student keeps fewer)",
            )
        ]
    if model.layers is not None and max(model.layers) >= total:
        return [
            Problem(
                str(suite.path),
                f"models[{i}].layers",
                f"{model.layers}: the base has {total} layers, numbered 0 to {total - 1}",
            )
        ]
    return []
