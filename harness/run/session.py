"""A run: collect candidates from suites, then per suite load data, and per base model evaluate the
untuned baseline (:mod:`harness.evaluate.evaluation`) and train (:mod:`harness.train.candidate`), export, evaluate
and gate every candidate, here or on an executor.

Results are written after every candidate, so an interruption or a crash loses nothing that was
already computed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.api import LoadContext, ResolvedModel
from harness.train.candidate import Training
from harness.suite.config import LossTable, ModelTable, Suite, item_name
from harness.data.prepare import Prepared, prepare
from harness.errors import ConfigError, DataError, HarnessError, Problem
from harness.evaluate.evaluation import Evaluation
from harness.exitcodes import ExitCode
from harness.gate.gates import gates_for
from harness.gate.guards import guards
from harness.evaluate.metrics import REPORTED
from harness.plugins import Plugins
from harness.suite.keyword import compile_k
from harness.suite.validate import check_suite, source_options


@dataclass
class Item:
    """One baseline or candidate of one suite."""

    suite: Suite
    model: ModelTable
    loss: LossTable | None  #: ``None`` for the untuned baseline

    @property
    def baseline(self) -> bool:
        return self.loss is None

    @property
    def name(self) -> str:
        return item_name(self.model, self.loss)

    @property
    def nodeid(self) -> str:
        return f"{self.suite.name}::{self.name}"

    @property
    def keywords(self) -> list[str]:
        kw = [self.suite.name, self.model.name, self.name, self.nodeid]
        kw += ["baseline"] if self.loss is None else [self.loss.name, self.loss.type]
        return kw


@dataclass
class SuiteRun:
    suite: Suite
    items: list[Item]
    run_dir: Path
    data: Prepared | None = None
    models: dict[str, ResolvedModel] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)  #: results of the run being resumed, by name
    load_error: str | None = None  #: a pair source that crashed: every item of the suite errors with it


def resolve_device(requested: str) -> str:
    if requested == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise ConfigError("--device cuda: torch sees no CUDA device on this machine")
    return "cuda" if available else "cpu"


def collect_suite_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths or ["suites"]):
        if p.is_dir():
            files += sorted(f for f in p.glob("*.toml") if not f.name.startswith("_"))
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(Problem(str(p), "", "no such suite file or folder"))
    return files


def load_suites(files: list[Path], plugins: Plugins, profile: str | None, device: str | None) -> list[Suite]:
    """Load, type-check and plugin-check every suite, raising one ConfigError with every problem."""
    from harness.suite.config import load_suite

    suites, problems = [], []
    for f in files:
        try:
            suite = load_suite(f, profile, device)
            plugins.load_suite_plugins(suite)
        except ConfigError as e:
            problems += e.problems
            continue
        problems += check_suite(suite, plugins.registry)
        suites.append(suite)
    names = [s.name for s in suites]
    for s in suites:
        if names.count(s.name) > 1:
            problems.append(Problem(str(s.path), "suite.name", f"another suite is also named {s.name!r}"))
    if problems:
        raise ConfigError(problems)
    return suites


def collect_items(suites: list[Suite], keyword: str | None) -> list[Item]:
    match = compile_k(keyword or "")
    items = []
    for suite in suites:
        for model in suite.models:
            cands = [Item(suite, model, loss) for loss in suite.losses]
            cands = [c for c in cands if match(c.keywords)]
            base = Item(suite, model, None)
            # a selected candidate needs its baseline (gains are measured against it)
            if cands or match(base.keywords):
                items.append(base)
            items += cands
    return items


def environment() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"harness": __version__}
    for dist in ("torch", "transformers", "sentence-transformers", "onnxruntime-gpu", "onnxruntime", "optimum",
                 "optimum-onnx", "polars"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


class Session:
    def __init__(self, plugins: Plugins, suites: list[Suite], items: list[Item], device: str, out_dir: Path,
                 options: Any = None):
        self.plugins = plugins
        self.suites = suites
        self.items = items
        self.device = device
        self.out_dir = out_dir
        self.options = options
        self.exitfirst = bool(getattr(options, "exitfirst", False))
        self.resume = bool(getattr(options, "resume", False))
        #: the model in production (``--compare``), see :func:`harness.gate.compare.load_reference`
        self.compare: dict | None = None
        self.hook = plugins.hook
        self.runs: list[SuiteRun] = []
        self.started = time.time()
        #: where items run: ``None`` here, one after another; else a :class:`harness.run.executors.RayExecutor`
        self.executor = None
        self.evaluation = Evaluation(plugins, device, options)
        self.training = Training(plugins, device, self.evaluation, self.plugin_specs())

    # --- the run --------------------------------------------------------------------------------

    def run(self) -> ExitCode:
        self.hook.harness_sessionstart(session=self)
        self.hook.harness_collection_finish(session=self, items=self.items)
        if not self.items:
            return self._finish(ExitCode.NO_CANDIDATES)
        code = ExitCode.OK
        try:
            self._prepare_all()  # bad data or an unknown model: exit 4 before any training
            if self.executor is None:
                self._run_here()
            else:
                self._run_on(self.executor)
            code = self._overall()
        except KeyboardInterrupt:
            code = ExitCode.INTERRUPTED
            if self.executor is not None:
                self.executor.cancel()
            for run in self.runs:
                if run.results:
                    self._write(run, code)
        return self._finish(code)

    def _run_here(self) -> None:
        """The local executor: every item in this process, one after another."""
        stop = False
        for run in self.runs:
            for item in run.items:
                if stop:
                    break
                result = self._run_item(run, item) if run.load_error is None else self._not_loaded(run, item)
                stop = self.exitfirst and result["status"] != "passed"
            self._write(run, self._suite_code(run))

    def plugin_specs(self) -> tuple[str, ...]:
        """The command line's ``-p`` options, for other processes to load the same plugins
        (:func:`harness.plugins.from_command_line`)."""
        return tuple(getattr(self.options, "plugins", None) or ())

    def _run_on(self, executor) -> None:
        """A distributed executor: every item that must run is submitted at once; results are judged,
        recorded and reported in suite order as they arrive, exactly as :meth:`_run_here` would."""
        from harness.run.executors import Task, unpack

        specs = self.plugin_specs()
        keys: dict[tuple[int, str], dict[str, str]] = {}
        done: dict[tuple[int, str], dict | None] = {}  # None: resumed, judged from the previous run
        for r, run in enumerate(self.runs):
            if run.load_error is not None:
                continue
            executor.mark_shared(run.run_dir)
            data_ref = None
            for item in run.items:
                keys[r, item.name] = self._keys(run, item)
                if self._finished_before(run, item, keys[r, item.name]):
                    done[r, item.name] = None
                    continue
                data_ref = data_ref if data_ref is not None else executor.put(run.data)
                task = Task(run.suite, item.model.name, None if item.loss is None else item.loss.name,
                            str(run.run_dir), keys[r, item.name], self.device, specs, str(Path.cwd()),
                            executor.token)
                executor.submit(task, data_ref, (r, item.name))
        position = [0] * len(self.runs)

        def conclude_ready() -> bool:
            """Record every item whose turn has come; False once -x says to stop."""
            for r, run in enumerate(self.runs):
                while position[r] < len(run.items):
                    item = run.items[position[r]]
                    if run.load_error is not None:
                        result = self._not_loaded(run, item)
                    elif (r, item.name) in done:
                        self.hook.harness_candidate_start(item=item)
                        computed = done.pop((r, item.name))
                        result = self._conclude(run, item, computed if computed is not None
                                                else self._resumed(run, item))
                    else:
                        break
                    position[r] += 1
                    if self.exitfirst and result["status"] != "passed":
                        return False
            return True

        if not conclude_ready():  # -x and a resumed failure
            executor.cancel()
        for (r, name), result, error in executor.results():
            run = self.runs[r]
            item = next(i for i in run.items if i.name == name)
            if error is not None:
                result = {**self._new_result(item, run.models.get(item.model.name)),
                          "step_key": keys[r, name]["result"], "error": error}
            elif result.get("_archive") is not None:  # no shared file system: the worker sent its folder
                unpack(result.pop("_archive"), run.run_dir / "models" / item.name)
            done[r, name] = result
            if not conclude_ready():
                executor.cancel()
                break
        for run in self.runs:
            self._write(run, self._suite_code(run))

    def _finish(self, code: ExitCode) -> ExitCode:
        statuses = [r["status"] for run in self.runs for r in run.results.values() if not r["baseline"]]
        summary = {
            "passed": statuses.count("passed"), "failed": statuses.count("failed"), "error": statuses.count("error"),
            "baselines": sum(1 for run in self.runs for r in run.results.values() if r["baseline"]),
            "seconds": time.time() - self.started,
            "runs": [{"suite": run.suite.name, "dir": str(run.run_dir)} for run in self.runs if run.results],
        }
        self.hook.harness_sessionfinish(session=self, exit_code=code, summary=summary)
        return code

    def _overall(self) -> ExitCode:
        codes = [self._suite_code(run) for run in self.runs]
        return max(codes, default=ExitCode.OK)

    @staticmethod
    def _suite_code(run: SuiteRun) -> ExitCode:
        bad = [r for r in run.results.values() if r["status"] != "passed"]
        return ExitCode.GATES_FAILED if bad else ExitCode.OK

    def _prepare_all(self) -> None:
        problems = []
        run_id = stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        n = 1
        while any((self.out_dir / s.name / run_id).exists() for s in self.suites):
            n += 1
            run_id = f"{stamp}-{n}"
        by_suite: dict[str, list[Item]] = {}
        for item in self.items:
            by_suite.setdefault(item.suite.name, []).append(item)
        for suite in self.suites:
            if suite.name not in by_suite:
                continue
            run = SuiteRun(suite, by_suite[suite.name], self._resumed_dir(suite) or self.out_dir / suite.name / run_id)
            if (run.run_dir / "results.json").is_file():
                try:
                    old = json.loads((run.run_dir / "results.json").read_text())
                    run.previous = {c["name"]: c for c in old.get("candidates", [])}
                except (OSError, ValueError, KeyError, TypeError):
                    run.previous = {}
            try:
                run.data = self._load_data(suite)
                problems += self._column_problems(suite, run.data)
                problems += self._executor_problems(suite)
            except DataError as e:
                problems += [Problem(str(suite.path), "data", m) for m in e.messages]
            except Exception as e:  # noqa: BLE001 - a plugin's bug: this suite's items error, the others run
                owner = self.plugins.registry.owner.get(("pair_sources", suite.data.source), "?")
                run.load_error = (f"pair source {suite.data.source!r} (plugin {owner}) raised "
                                  f"{type(e).__name__}: {e}")
                self.hook.harness_warning(message=f"{suite.name}: {run.load_error}", item=None)
            for i, model in enumerate(suite.models):
                if not any(it.model is model for it in run.items):
                    continue
                try:
                    run.models[model.name] = self.plugins.resolve_model(model.base, model.revision)
                except HarnessError as e:
                    problems.append(Problem(str(suite.path), f"models[{i}].base", str(e)))
            self.runs.append(run)
        if problems:
            raise ConfigError(problems)
        for run in self.runs:
            if run.data is None:
                continue
            for w in run.data.warnings + self._history_warnings(run):
                self.hook.harness_warning(message=f"{run.suite.name}: {w}", item=None)

    def _column_problems(self, suite: Suite, data: Prepared) -> list[Problem]:
        """Losses the loaded data cannot feed (scored pairs from ungraded pairs), before any training."""
        from harness.data.trainset import graded, missing_columns

        out = []
        for i, loss in enumerate(suite.losses):
            spec = self.plugins.registry.losses[loss.type]
            missing = missing_columns(spec, loss.options, loss.hard_negatives is not None, graded(data))
            if missing:
                out.append(Problem(str(suite.path), f"losses[{i}]", missing))
        return out

    def _executor_problems(self, suite: Suite) -> list[Problem]:
        """Mining with another candidate's model needs that candidate trained first, in this process."""
        if self.executor is None:
            return []
        names = suite.candidate_names()
        return [Problem(str(suite.path), f"losses[{i}].hard_negatives.model",
                        f"mining with the candidate {loss.hard_negatives.model!r} needs it trained first: run this "
                        "suite with --executor local")
                for i, loss in enumerate(suite.losses)
                if loss.hard_negatives is not None and loss.hard_negatives.model in names]

    def _resumed_dir(self, suite: Suite) -> Path | None:
        """With --resume: the suite's newest run folder (finished steps in it are re-used)."""
        if not self.resume:
            return None
        folder = self.out_dir / suite.name
        runs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()) if folder.is_dir() else []
        if not runs:
            self.hook.harness_warning(message=f"{suite.name}: --resume: no earlier run in {folder}, starting anew",
                                      item=None)
            return None
        return runs[-1]

    def _history_warnings(self, run: SuiteRun) -> list[str]:
        """The report's history compares runs: say when the last finished one had other data or settings."""
        try:
            last = json.loads((run.run_dir.parent / "latest" / "results.json").read_text())
        except (OSError, ValueError):
            return []
        out = []
        if last.get("run_id") == run.run_dir.name:
            return out
        if (last.get("data") or {}).get("fingerprint") not in (None, run.data.fingerprint):
            out.append(f"the previous run {last.get('run_id')} used other data (fingerprint "
                       f"{last['data']['fingerprint']} vs {run.data.fingerprint}): the history mixes datasets")
        if last.get("suite_sha256") not in (None, run.suite.sha256) or last.get("profile") != run.suite.profile:
            out.append(f"the previous run {last.get('run_id')} used other suite settings (suite file or profile "
                       "changed): compare the history with care")
        return out

    def _load_data(self, suite: Suite) -> Prepared:
        source = self.plugins.registry.pair_sources[suite.data.source]
        data_dir = os.environ.get("HARNESS_DATA_DIR")
        cache = Path(os.environ.get("HARNESS_CACHE_DIR", Path.home() / ".cache" / "harness"))
        ctx = LoadContext(Path(data_dir) if data_dir else None, suite.path.parent.resolve(), cache,
                          (suite.data.train_split, suite.data.test_split),
                          lambda name: self.plugins.resolve_model(name, None).path, self.device)
        return prepare(source.load(source_options(suite, self.plugins.registry), ctx), suite.data)

    # --- one baseline or candidate ------------------------------------------------------------

    @staticmethod
    def _new_result(item: Item, resolved: ResolvedModel | None) -> dict[str, Any]:
        """The skeleton of a baseline's or candidate's result: an error until it has run."""
        return {
            "name": item.name, "nodeid": item.nodeid, "base_model": item.model.base,
            "base_model_revision": resolved.revision if resolved else None,
            "resolver": resolved.resolver if resolved else None,
            "baseline": item.baseline, "loss": None if item.loss is None else {"type": item.loss.type, **item.loss.options},
            "status": "error", "metrics": {}, "gates": [], "encoder": None, "timings": {},
        }

    def _record(self, run: SuiteRun, item: Item, result: dict) -> dict:
        """Keep ``result``, rewrite results.json (so a crash loses nothing) and report it."""
        run.results[item.name] = result
        self._write(run, None)
        self.hook.harness_candidate_report(item=item, result=result)
        return result

    def _not_loaded(self, run: SuiteRun, item: Item) -> dict:
        self.hook.harness_candidate_start(item=item)
        return self._record(run, item, {**self._new_result(item, None), "error": run.load_error})

    def _keys(self, run: SuiteRun, item: Item) -> dict[str, str]:
        """Step keys of ``item`` (see :mod:`harness.run.steps`): what decides each step's output."""
        from harness.run.steps import digest

        s, resolved = run.suite, run.models[item.model.name]
        train = {"harness": __version__, "device": self.device, "data": run.data.fingerprint,
                 "data_table": vars(s.data), "model": vars(item.model), "model_path": str(resolved.path),
                 "revision": resolved.revision, "loss": None if item.baseline else vars(item.loss),
                 "training": None if item.baseline else vars(s.training)}
        result = {**train, "export": vars(s.export), "evaluation": vars(s.evaluation)}
        # a refit changes what ships, not the trainings that chose: those keep their key (and --resume re-uses them)
        chose = {**train, "training": train["training"] and {k: v for k, v in train["training"].items() if k != "refit"}}
        return {"train": digest(chose), "export": digest({**train, "step": "export"}), "result": digest(result)}

    @staticmethod
    def _finished_before(run: SuiteRun, item: Item, keys: dict[str, str]) -> bool:
        """--resume: the run being resumed finished ``item`` with the same data and settings."""
        prev = run.previous.get(item.name)
        return bool(prev and prev.get("step_key") == keys["result"] and prev.get("status") in ("passed", "failed"))

    def _resumed(self, run: SuiteRun, item: Item) -> dict:
        """The previous result of an item that finished before (only its verdict is recomputed:
        thresholds may have changed)."""
        self.hook.harness_candidate_progress(item=item, stage="resumed", info={"run": str(run.run_dir)})
        return {**run.previous[item.name], "resumed_from": str(run.run_dir)}

    def _run_item(self, run: SuiteRun, item: Item) -> dict:
        keys = self._keys(run, item)
        self.hook.harness_candidate_start(item=item)
        result = self._resumed(run, item) if self._finished_before(run, item, keys) else self.compute(run, item, keys)
        return self._conclude(run, item, result)

    def _conclude(self, run: SuiteRun, item: Item, result: dict) -> dict:
        """Judge a computed candidate against its baseline (which concluded before it), record, report."""
        if not item.baseline and "error" not in result:
            try:
                self._judge(run, item, result)
            except Exception as e:  # noqa: BLE001 - one candidate's problem must not stop the others
                result["error"], result["status"] = f"{type(e).__name__}: {e}", "error"
                result["traceback"] = traceback.format_exc()
        return self._record(run, item, result)

    def compute(self, run: SuiteRun, item: Item, keys: dict[str, str]) -> dict:
        """Train (a candidate), export and evaluate ``item``: its result before judging. Errors are
        kept in the result (``error``); this runs in a worker process under ``--executor ray``."""
        resolved = run.models[item.model.name]
        result = {**self._new_result(item, resolved), "step_key": keys["result"]}
        work = run.run_dir / "models" / item.name
        work.mkdir(parents=True, exist_ok=True)

        def progress(stage: str, info: dict) -> None:
            self.hook.harness_candidate_progress(item=item, stage=stage, info=info)

        try:
            if item.baseline:
                evaluated = self.evaluation.export_and_evaluate(run, item, resolved.path, work, progress, keys,
                                                                self.evaluation.suite_dims(run))
                result["timings"].update(evaluated.pop("timings"))
                result.update(evaluated)
                result["status"] = "passed"
            else:
                self.training.candidate(run, item, resolved, work, keys, progress, result)
                result["status"] = "evaluated"
        except KeyboardInterrupt:
            result["error"] = "interrupted"
            run.results[item.name] = result
            raise
        except HarnessError as e:
            result["error"] = str(e)
        except Exception as e:  # noqa: BLE001 - one candidate's crash must not stop the others
            result["error"] = f"{type(e).__name__}: {e}"
            result["traceback"] = traceback.format_exc()
            if "out of memory" in str(e).lower():
                result["error"] += " (hint: lower training.batch_size or use CachedMultipleNegativesRankingLoss)"
        if not (work / "trained").exists() and not (work / "export").exists():
            shutil.rmtree(work, ignore_errors=True)
        return result

    def _judge(self, run: SuiteRun, item: Item, result: dict) -> None:
        """Compare a candidate with its references (paired statistics), gate it, pick its per-query view."""
        from harness.gate.compare import comparisons, per_query_view

        suite = run.suite
        base = run.results.get(f"{item.model.name}-baseline")
        base_ok = base if base and base["status"] == "passed" else None
        compare = self.compare if self.compare and self.compare["suite"] == suite.name else None
        references = {"baseline": base_ok, "compare": compare}
        metrics = sorted({suite.evaluation.primary_metric, *REPORTED, *(t.metric for t in suite.thresholds)})
        result["comparison"] = comparisons(result["per_query"], references, metrics, suite.data.seed)
        if compare:
            result["compared_with"] = {k: compare[k] for k in ("file", "run_id", "name")}
        worst = None
        if result.get("seeds"):
            worst = {"metrics": result["seeds"]["worst"], "comparisons": {}}
            for m in {t.metric for t in suite.thresholds if t.seeds == "worst"}:
                runs = [r for r in result["seeds"]["runs"] if m in r["metrics"]]
                if not runs:
                    continue
                low = (max if m == "model_mb" else min)(runs, key=lambda r: r["metrics"][m])
                for ref, stats in comparisons(low["per_query"], references, [m], suite.data.seed).items():
                    worst["comparisons"].setdefault(ref, {}).update(stats)
        result["gates"] = gates_for(item.name, result["metrics"],
                                    {k: v["metrics"] if v else None for k, v in references.items()},
                                    result["comparison"], suite.thresholds, worst)
        shipped = next((v for v in result.get("variants", []) if v.get("shipped")), None)
        if shipped and shipped["variant"] != "fp32":  # the shipped variant may lose at most export.max_drop
            result["gates"].append({"metric": suite.evaluation.primary_metric, "kind": "max_drop", "against": "fp32",
                                    "threshold": suite.export.max_drop, "value": shipped.get("drop"),
                                    "passed": bool(shipped.get("passed"))})
        result["status"] = "passed" if all(g["passed"] for g in result["gates"]) else "failed"
        result["guards"] = guards(result, base_ok, suite.evaluation.primary_metric)
        result["guards"] += (result.get("mining") or {}).get("warnings", [])
        if base_ok:
            result["per_query_view"] = per_query_view(result, base_ok, suite.evaluation.primary_metric, run.data)

    # --- output ---------------------------------------------------------------------------------

    def _write(self, run: SuiteRun, code: ExitCode | None) -> None:
        """Write results.json (atomically) and, once the suite is done, report.html and ``latest``."""
        from harness.gate.compare import shipped
        from harness.report.html import write_report

        run.run_dir.mkdir(parents=True, exist_ok=True)
        data = run.data
        doc = {
            "suite": run.suite.name, "suite_file": str(run.suite.path), "suite_sha256": run.suite.sha256,
            "description": run.suite.suite.description, "profile": run.suite.profile, "run_id": run.run_dir.name,
            "exit_code": None if code is None else int(code), "device": self.device,
            "executor": {"kind": "local"} if self.executor is None else {"kind": "ray", "cluster": self.executor.cluster},
            "started": dt.datetime.fromtimestamp(self.started).isoformat(timespec="seconds"),
            "finished": dt.datetime.now().isoformat(timespec="seconds") if code is not None else None,
            "primary_metric": run.suite.evaluation.primary_metric,
            "data": None if data is None else {"source": run.suite.data.source, "fingerprint": data.fingerprint,
                                               **data.stats(), "warnings": data.warnings},
            "training": dict(vars(run.suite.training)),
            "export": dict(vars(run.suite.export)),
            "data_seed": run.suite.data.seed,
            "environment": environment(),
            "candidates": list(run.results.values()),
            "not_run": [i.name for i in run.items if i.name not in run.results],
            "shipped": (shipped(list(run.results.values()), run.suite.evaluation.primary_metric) or {}).get("name"),
            "compare": None if not self.compare else {k: self.compare[k] for k in ("file", "run_id", "name", "metrics")},
        }
        tmp = run.run_dir / "results.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        tmp.replace(run.run_dir / "results.json")
        if code is not None:  # `latest` first: should the report fail, `harness report <suite>/latest` re-renders it
            latest = run.run_dir.parent / "latest"
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(run.run_dir.name)
            write_report(run.run_dir)
