"""A session: the runs of the collected suites, driven through one loop for every executor.

The session prepares every suite (:mod:`harness.run.loading`: bad data or an unknown model is exit
4 before any training), submits each item that must compute to the executor
(:mod:`harness.run.executors`), and concludes items in suite order as their results arrive: a
candidate is judged against its baseline (:func:`harness.gate.verdict.judge`), recorded, written to
results.json and reported. ``-x``, ``--resume``, errors and Ctrl-C are handled here once, for
every executor.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from harness.core import records
from harness.core.names import Stage, Status
from harness.core.suiterun import SuiteRun
from harness.evaluate.references import bm25_references, model_reference
from harness.exitcodes import ExitCode
from harness.gate.hybrids import dense_dev, judged, judged_hybrids, passed_baseline
from harness.plugins import Plugins
from harness.results import CandidateResult, new_result
from harness.run.options import RunOptions
from harness.run.pipeline import Interrupted, item_keys
from harness.suite.collect import Item
from harness.suite.schema import Suite


def missing_outputs(run: SuiteRun, item: Item, keys: dict[str, str]) -> list | None:
    """None when the run being resumed did not finish ``item`` with these step ``keys``; else the
    files of its result that are gone or changed ([] when it can be re-used as it is)."""
    prev = run.previous.get(item.name)
    if not (
        prev
        and prev.get("step_key") == keys["result"]
        and prev.get("status") in (Status.PASSED, Status.FAILED)
    ):
        return None
    gone = [f for f in result_files(run, prev) if not f.is_file()]
    gone += [
        folder / rel
        for folder in result_folders(run, prev)
        for rel in records.missing(folder)
        if folder / rel not in gone
    ]
    return gone + [folder for folder in result_folders(run, prev) if not (folder / records.MARK).is_file()]


def result_files(run: SuiteRun, result: CandidateResult) -> list:
    """The exported graphs a finished result names (its variants'), as paths in the run folder."""
    return [run.run_dir / v["file"] for v in result.get("variants") or [] if v.get("file")]


def result_folders(run: SuiteRun, result: CandidateResult) -> list:
    """The step folders a finished result came from: its trained model (a candidate) and its export."""
    work = run.run_dir / "models" / result["name"]
    folder = work / result["model_dir"] if result.get("model_dir") else work
    return ([folder / "trained"] if not result.get("baseline") else []) + [folder / "export"]


def finished_before(hook, run: SuiteRun, item: Item, keys: dict[str, str]) -> bool:
    """--resume: the run being resumed finished ``item`` with the same data and settings, and every
    file its result names is still there (else its steps run again, re-using those that are intact)."""
    gone = missing_outputs(run, item, keys)
    if gone:
        hook.harness_warning(
            message=f"{item.nodeid}: --resume: {len(gone)} of its files are gone or changed "
            f"(e.g. {gone[0]}): redoing what they came from",
            item=item,
        )
    return gone == []


def resumed(hook, run: SuiteRun, item: Item) -> CandidateResult:
    """The previous result of an item that finished before (only its verdict is recomputed:
    thresholds may have changed)."""
    hook.harness_candidate_progress(item=item, stage=Stage.RESUMED, info={"run": str(run.run_dir)})
    return {**run.previous[item.name], "resumed_from": str(run.run_dir)}


def resolve_device(requested: str) -> str:
    """``auto``: CUDA when torch sees a GPU, else the CPU; ``cuda`` without one is a usage error."""
    from harness.errors import ConfigError

    if requested == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise ConfigError("--device cuda: torch sees no CUDA device on this machine")
    return "cuda" if available else "cpu"


class Session:
    """Runs ``items`` of ``suites`` with ``options`` on ``executor`` (see :func:`harness.run.executors.make`).
    ``compare``: the model in production (``--compare``, :func:`harness.gate.compare.load_reference`)."""

    def __init__(
        self,
        plugins: Plugins,
        suites: list[Suite],
        items: list[Item],
        options: RunOptions,
        executor,
        compare: dict | None = None,
    ):
        self.plugins = plugins
        self.hook = plugins.hook
        self.suites = suites
        self.items = items
        self.options = options
        self.executor = executor
        self.compare = compare
        self.runs: list[SuiteRun] = []
        self.started = time.time()
        self._begun: set[tuple[int, str]] = set()  #: items whose start was reported
        self._finished: set[int] = set()  #: runs whose final results.json and report are written
        self._done: dict[
            tuple[int, str], CandidateResult | None
        ] = {}  #: computed, not yet concluded (None: resumed)
        self._position: list[int] = []  #: per run, the index of the next item to conclude

    # for plugins (hookspecs): the session's device and output folder
    @property
    def device(self) -> str:
        return self.options.device

    @property
    def out_dir(self):
        return self.options.out_dir

    def run(self) -> ExitCode:
        from harness.run.loading import Preparation, release

        self.hook.harness_sessionstart(session=self)
        self.hook.harness_collection_finish(session=self, items=self.items)
        if not self.items:
            return self._finish(ExitCode.NO_CANDIDATES)
        try:
            self.runs = Preparation(self.plugins, self.options, self.executor.sequential).runs(
                self.suites, self.items
            )
            self._drive()
            code = max((suite_code(run) for run in self.runs), default=ExitCode.OK)
        except KeyboardInterrupt as e:
            code = ExitCode.INTERRUPTED
            self.executor.cancel()
            if isinstance(e, Interrupted):
                run, item = self._owner(e.result["nodeid"])
                run.results[item.name] = e.result
            for run in self.runs:
                if run.results:
                    self._write(run, code)
        finally:
            for run in self.runs:  # a run that -x or Ctrl-C stopped before it began leaves no empty folder
                release(run, remove_if_new=not run.results)
        return self._finish(code)

    # --- the one loop ---------------------------------------------------------------------------

    def _drive(self) -> None:
        """Submit every item that must compute; conclude items in suite order as results arrive."""
        keys: dict[tuple[int, str], dict[str, str]] = {}
        for r, run in enumerate(self.runs):
            if run.load_error is not None:
                continue
            for result in bm25_references(run):
                self.hook.harness_reference_report(suite=run.suite, reference=result)
            for item in run.items:
                keys[r, item.name] = item_keys(run, item, self.options.device)
                if finished_before(self.hook, run, item, keys[r, item.name]):
                    self._done[r, item.name] = None
                else:
                    self.executor.submit(run, item, keys[r, item.name], (r, item.name))
        self._position = [0] * len(self.runs)
        stop = not self._conclude_ready()  # -x and a resumed failure
        if not stop:
            for (r, name), result, error in self.executor.results(started=self._begin):
                if error is not None:
                    run = self.runs[r]
                    item = next(i for i in run.items if i.name == name)
                    result = {
                        **new_result(item, run.models.get(item.model.name)),
                        "step_key": keys[r, name]["result"],
                        "error": error,
                    }
                self._done[r, name] = result
                if not self._conclude_ready():
                    stop = True
                    break
        if stop:
            self.executor.cancel()
        for r, run in enumerate(self.runs):
            if r not in self._finished and run.results:
                self._write(run, suite_code(run))

    def _conclude_ready(self) -> bool:
        """Conclude every item whose turn has come, and finish every run that is complete; False
        once ``-x`` says to stop."""
        for r, run in enumerate(self.runs):
            while self._position[r] < len(run.items):
                item = run.items[self._position[r]]
                if run.load_error is not None:
                    self._begin((r, item.name))
                    result = self._record(run, item, {**new_result(item, None), "error": run.load_error})
                elif (r, item.name) in self._done:
                    self._begin((r, item.name))
                    computed = self._done.pop((r, item.name))
                    result = self._conclude(
                        run, item, computed if computed is not None else resumed(self.hook, run, item)
                    )
                else:
                    break
                self._position[r] += 1
                failed = (
                    result["status"] != Status.PASSED and item.reference is None
                )  # -x stops at a candidate or baseline
                if result.get("fatal") or (self.options.exitfirst and failed):
                    return False
            if self._position[r] == len(run.items) and r not in self._finished:
                self._finished.add(r)
                self._write(run, suite_code(run))
        return True

    def _begin(self, key: tuple[int, str]) -> None:
        if key not in self._begun:
            self._begun.add(key)
            run = self.runs[key[0]]
            self.hook.harness_candidate_start(item=next(i for i in run.items if i.name == key[1]))

    def _owner(self, nodeid: str) -> tuple[SuiteRun, Item]:
        for run in self.runs:
            for item in run.items:
                if item.nodeid == nodeid:
                    return run, item
        raise LookupError(nodeid)

    def _conclude(self, run: SuiteRun, item: Item, result: CandidateResult) -> CandidateResult:
        """Judge a computed candidate against its baseline (which concluded before it), record, report."""
        if item.reference is not None:  # a model reference: kept beside the bm25 ones, never gated
            entry = run.references[item.name] = model_reference(item.reference, result)
            self._write(run, None)
            self.hook.harness_reference_report(suite=run.suite, reference=entry)
            return {**result, "status": Status.PASSED if "error" not in result else Status.ERROR}
        compare = self.compare if self.compare and self.compare["suite"] == run.suite.name else None
        if not item.baseline and "error" not in result:
            result = judged(run, item, result, passed_baseline(run, item), compare)
            result = result if "error" in result else {**result, "dev": dense_dev(result)}
        recorded = self._record(run, item, result)
        if "error" not in result:  # its hybrids with BM25: rows of their own
            for row in judged_hybrids(run, item, result, compare):
                self._record(run, dataclasses.replace(item, fused=row["name"]), row)
        return recorded

    def _record(self, run: SuiteRun, item: Item, result: CandidateResult) -> CandidateResult:
        """Keep ``result``, rewrite results.json (so a crash loses nothing) and report it."""
        run.results[item.name] = result
        self._write(run, None)
        self.hook.harness_candidate_report(item=item, result=result)
        return result

    # --- output ---------------------------------------------------------------------------------

    def _write(self, run: SuiteRun, code: ExitCode | None) -> None:
        from harness.report.document import run_document, write_results
        from harness.report.html import write_report

        write_results(
            run.run_dir,
            run_document(
                run, code, self.options.device, self.executor.describe(), self.started, self.compare
            ),
        )
        if code is not None:
            write_report(run.run_dir)

    def _finish(self, code: ExitCode) -> ExitCode:
        self.hook.harness_sessionfinish(
            session=self, exit_code=code, summary=summary(self.runs, self.started)
        )
        return code


def suite_code(run: SuiteRun) -> ExitCode:
    """A suite run's exit code: 1 when any of its baselines or candidates did not pass."""
    bad = [r for r in run.results.values() if r["status"] != Status.PASSED]
    return ExitCode.GATES_FAILED if bad else ExitCode.OK


def summary(runs: list[SuiteRun], started: float) -> dict:
    """What the closing line says (see ``harness_sessionfinish``)."""
    results: list[Any] = [r for run in runs for r in run.results.values()]
    statuses = [r["status"] for r in results if not r["baseline"]]
    return {
        "passed": statuses.count(Status.PASSED),
        "failed": statuses.count(Status.FAILED),
        "error": statuses.count(Status.ERROR),
        "interrupted": sum(1 for r in results if r["status"] == Status.INTERRUPTED),
        "baselines": sum(1 for r in results if r["baseline"]),
        "baseline_errors": sum(1 for r in results if r["baseline"] and r["status"] == Status.ERROR),
        "seconds": time.time() - started,
        "runs": [{"suite": run.suite.name, "dir": str(run.run_dir)} for run in runs if run.results],
    }
