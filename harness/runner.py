"""A run: collect candidates from suites, then per suite load data, and per base model evaluate the
untuned baseline and train, export, encode, evaluate and gate every candidate.

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

from . import __version__
from .api import LoadContext, ResolvedModel
from .config import LossTable, ModelTable, Suite
from .data import Prepared, prepare
from .errors import CandidateError, ConfigError, DataError, HarnessError, Problem
from .exitcodes import ExitCode
from .gate import gates_for
from .guards import guards
from .metrics import REPORTED
from .plugins import Plugins
from .select import compile_k
from .validate import check_suite, source_options


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
        return f"{self.model.name}-{'baseline' if self.loss is None else self.loss.name}"

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


def resolve(hook, name: str, revision: str | None) -> ResolvedModel:
    """A model name to a local folder through the ``harness_resolve_model`` hook; DataError if no
    resolver has it."""
    resolved = hook.harness_resolve_model(name=name, revision=revision)
    if resolved is None:
        raise DataError(f"model {name!r} not found: not a local folder, not on the hub (offline?) and no bundled "
                        "copy is installed")
    return resolved


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
    from .config import load_suite

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
        #: the model in production (``--compare``), see :func:`harness.compare.load_reference`
        self.compare: dict | None = None
        self.hook = plugins.hook
        self.runs: list[SuiteRun] = []
        self.started = time.time()
        #: where items run: ``None`` here, one after another; else a :class:`harness.executors.RayExecutor`
        self.executor = None

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
        from .executors import Task, unpack

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
                    run.models[model.name] = resolve(self.hook, model.base, model.revision)
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
        from .trainset import graded, missing_columns

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
        names = {f"{m.name}-{loss.name}" for m in suite.models for loss in suite.losses}
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
                          lambda name: resolve(self.hook, name, None).path, self.device)
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
        """Step keys of ``item`` (see :mod:`harness.steps`): what decides each step's output."""
        from .steps import digest

        s, resolved = run.suite, run.models[item.model.name]
        train = {"harness": __version__, "device": self.device, "data": run.data.fingerprint,
                 "data_table": vars(s.data), "model": vars(item.model), "model_path": str(resolved.path),
                 "revision": resolved.revision, "loss": None if item.baseline else vars(item.loss),
                 "training": None if item.baseline else vars(s.training)}
        result = {**train, "export": vars(s.export), "evaluation": vars(s.evaluation)}
        return {"train": digest(train), "export": digest({**train, "step": "export"}), "result": digest(result)}

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
                evaluated = self._export_and_evaluate(run, item, resolved.path, work, progress, keys,
                                                      self._suite_dims(run))
                result["timings"].update(evaluated.pop("timings"))
                result.update(evaluated)
                result["status"] = "passed"
            else:
                self._candidate(run, item, resolved, work, keys, progress, result)
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

    def _candidate(self, run: SuiteRun, item: Item, resolved: ResolvedModel, work: Path, keys: dict[str, str],
                   progress, result: dict) -> None:
        """Mine (if asked), try the grid's settings on dev, train once per seed at the chosen setting,
        export and evaluate each seed, and draw the learning curve; the result holds every step."""
        from dataclasses import replace

        from . import selection, trainset
        from .steps import digest

        cfg, primary = run.suite.training, run.suite.evaluation.primary_metric
        spec = self.plugins.registry.losses[item.loss.type]
        options = self._loss_options(item, spec)
        mined = None
        if item.loss.hard_negatives is not None:
            mined = self._mined(run, item, resolved, progress)
            result["mining"] = mined["stats"]
        columns = trainset.build(run.data, spec, options, mined and mined["columns"], item.model.query_prompt,
                                 item.model.document_prompt)
        seeds, points = cfg.seed_list, cfg.points()
        trained: list[dict] = []  # every training's summary, for the total time

        def fit(out: Path, setting: dict, seed: int, rows: dict, tag: list, keep: bool = True) -> dict:
            info = self._train(run, item, resolved.path, out, digest([keys["train"], setting, seed, *tag]), progress,
                               spec, options, rows, replace(cfg, **setting, seed=seed), keep)
            trained.append(info)
            return info

        chosen, grid = points[0], None
        if len(points) > 1:
            trials = []
            for i, point in enumerate(points):
                progress("trial", {"index": i + 1, "of": len(points), "setting": point})
                info = fit(work / "grid" / str(i) / "trained", point, seeds[0], columns, [])
                trials.append({"setting": point, "dev_score": info["dev_score"], "chosen_epoch": info["chosen_epoch"],
                               "seconds": info["seconds"]})
            best = selection.best([t["dev_score"] for t in trials])
            chosen = points[best]
            grid = {"trials": trials, "chosen": chosen, "chosen_index": best,
                    "by": f"best dev {primary} of {len(points)} settings (seed {seeds[0]})"}
            progress("chosen", {"setting": chosen, "dev_score": trials[best]["dev_score"], "of": len(points)})
        runs = []
        for seed in seeds:
            folder = work if seed == seeds[0] else work / "seeds" / str(seed)
            adopted = grid is not None and seed == seeds[0] and selection.adopt(
                work / "grid" / str(grid["chosen_index"]) / "trained", folder / "trained")
            if adopted:  # the grid's winner is this training: moved, not redone
                progress("trained", {"adopted": True})
                info = json.loads((folder / "trained" / ".harness-train.json").read_text())
            else:
                info = fit(folder / "trained", chosen, seed, columns, [])
            skeys = {k: digest([v, chosen, seed]) for k, v in keys.items()}
            evaluated = self._export_and_evaluate(run, item, folder / "trained", folder, progress, skeys,
                                                  spec.evaluation_dims(options))
            runs.append({"seed": seed, "folder": folder, "training": info, "evaluated": evaluated})
            if len(seeds) > 1:
                progress("seed", {"seed": seed, "dev_score": info["dev_score"],
                                  primary: evaluated["metrics"].get(primary)})
        shutil.rmtree(work / "grid", ignore_errors=True)
        curve = None
        if cfg.learning_curve:
            points_ = []
            for f in sorted(cfg.learning_curve):
                info = fit(work / "curve" / f"{f:g}", chosen, seeds[0], trainset.subset(columns, f, seeds[0]), [f],
                           keep=False)
                points_.append({"fraction": f, "pairs": info["pairs"], "dev_score": info["dev_score"]})
                progress("curve", points_[-1])
            first = runs[0]["training"]
            points_.append({"fraction": 1.0, "pairs": first["pairs"], "dev_score": first["dev_score"]})
            curve = {"points": points_, "verdict": selection.curve_verdict(points_, primary)}
        ship = runs[selection.best([r["training"]["dev_score"] for r in runs])]
        evaluated = ship["evaluated"]
        result["training"] = {**ship["training"], "seed": ship["seed"], "setting": chosen, "grid": grid,
                              "learning_curve": curve, "total_seconds": round(sum(t["seconds"] for t in trained), 1),
                              "trainings": len(trained)}
        result["training"]["embedding_change"] = next(
            (v["export_check"]["embedding_change"] for v in evaluated["variants"]
             if "embedding_change" in v.get("export_check", {})), None)
        result["timings"]["train_s"] = result["training"]["total_seconds"]
        result["timings"].update(evaluated.pop("timings"))
        result.update(evaluated)
        result["model_dir"] = os.path.relpath(ship["folder"], work)
        if len(runs) > 1:
            gated = {primary, *(t.metric for t in run.suite.thresholds)}
            result["seeds"] = selection.summarise(runs, ship["seed"], primary, gated)
            result["metrics"] = {**result["metrics"], **result["seeds"]["mean"]}
            result["per_query"] = selection.mean_per_query([r["evaluated"]["per_query"] for r in runs])
            if result.get("dims"):
                result["dims"] = selection.mean_dims([r["evaluated"]["dims"] for r in runs])

    def _loss_options(self, item: Item, spec) -> dict:
        """The loss's options, with those that name a model resolved to a local folder."""
        options = dict(item.loss.options)
        for name in spec.model_options:
            if isinstance(options.get(name), str):
                options[name] = str(resolve(self.hook, options[name], None).path)
        return options

    def _mined(self, run: SuiteRun, item: Item, resolved: ResolvedModel, progress) -> dict:
        """The hard negatives of ``item``'s loss entry: mined once per setting and mining model in a run
        (``mining/<key>.json``), re-used by every loss that asks for the same, and by --resume."""
        from . import mining, steps

        cfg = item.loss.hard_negatives
        model_dir = self._mining_model(run, resolved, cfg.model)
        seq = run.suite.training.max_seq_length
        key = steps.digest({"harness": __version__, "data": run.data.fingerprint, "data_table": vars(run.suite.data),
                            "mining": vars(cfg), "model": str(model_dir), "seq": seq,
                            "prompts": [item.model.query_prompt, item.model.document_prompt],
                            "fingerprint": steps.folder_key(model_dir)})
        file = run.run_dir / "mining" / f"{key}.json"
        found = steps.load(file, key)
        if found is None:
            t0 = time.perf_counter()
            found = mining.mine(run.data, cfg, model_dir, self.device, seq, item.model.query_prompt,
                                item.model.document_prompt, run.suite.data.seed)
            found["stats"]["model"] = cfg.model
            found["stats"]["seconds"] = round(time.perf_counter() - t0, 1)
            steps.store(file, key, found)
        found["stats"]["warnings"] = mining.warnings(found["stats"], cfg)
        progress("mined", found["stats"])
        return found

    def _mining_model(self, run: SuiteRun, resolved: ResolvedModel, name: str) -> Path:
        """The folder of the model ``hard_negatives.model`` names (see :class:`harness.config.HardNegativesTable`)."""
        if name == "base":
            return resolved.path
        model = next((m for m in run.suite.models if m.name == name), None)
        if model is not None:
            return resolve(self.hook, model.base, model.revision).path
        if any(f"{m.name}-{loss.name}" == name for m in run.suite.models for loss in run.suite.losses):
            done = run.results.get(name)
            if not done or done.get("status") == "error" or "model_dir" not in done:
                raise CandidateError(f"hard_negatives.model = {name!r}: that candidate has not been trained in this run "
                                     "(it must be selected, and listed before this loss)")
            return run.run_dir / "models" / name / done["model_dir"] / "trained"
        return resolve(self.hook, name, None).path

    def _train(self, run: SuiteRun, item: Item, base: Path, out: Path, key: str, progress, spec, options: dict,
               columns: dict, cfg, keep: bool = True) -> dict:
        """Train ``item`` into ``out``, or re-use ``out`` when a run with the same key finished it.
        ``keep=False``: only the summary is kept (learning-curve points)."""
        from . import steps
        from .train import train

        info_file = out / ".harness-train.json"
        if steps.is_done(out, key) and info_file.is_file():
            info = json.loads(info_file.read_text())
            progress("trained", {"seconds": info["seconds"], "pairs": info["pairs"], "kept": info["chosen_by"],
                                 "resumed": True})
            return info
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        for stale in out.parent.glob("harness-train-*"):  # checkpoints of a killed run
            shutil.rmtree(stale, ignore_errors=True)
        processes = cfg.processes
        if processes > 1:
            from .distributed import train_distributed

            work = out.parent / "harness-train-ddp"
            spec_ = {"suite": run.suite, "training": cfg, "base": base, "loss_type": item.loss.type,
                     "loss_options": options, "columns": columns, "data": run.data,
                     "primary_metric": run.suite.evaluation.primary_metric, "device": self.device, "out": out,
                     "query_prompt": item.model.query_prompt, "document_prompt": item.model.document_prompt,
                     "work_dir": work, "plugin_specs": self.plugin_specs(), "cwd": str(Path.cwd())}
            try:
                info = train_distributed(spec_, processes, self.device, out.parent)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        else:
            info = train(base, spec, options, run.data, cfg, run.suite.evaluation.primary_metric, self.device, out,
                         item.model.query_prompt, item.model.document_prompt, progress=progress,
                         columns=columns).as_dict()
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
        info_file.write_text(json.dumps(info))
        steps.mark_done(out, key)
        progress("trained", {"seconds": info["seconds"], "pairs": info["pairs"], "kept": info["chosen_by"],
                             "processes": processes, "dev_score": info.get("dev_score")})
        return info

    def _judge(self, run: SuiteRun, item: Item, result: dict) -> None:
        """Compare a candidate with its references (paired statistics), gate it, pick its per-query view."""
        from .compare import comparisons, per_query_view

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

    def _suite_dims(self, run: SuiteRun) -> list[int]:
        """The truncated embedding sizes any loss of the suite is evaluated at (the baseline is too)."""
        dims: set[int] = set()
        for loss in run.suite.losses:
            spec = self.plugins.registry.losses.get(loss.type)
            dims |= set(spec.evaluation_dims(loss.options)) if spec else set()
        return sorted(dims, reverse=True)

    def _export_and_evaluate(self, run: SuiteRun, item: Item, torch_dir: Path, work: Path, progress,
                             keys: dict[str, str], dims: list[int] = ()) -> dict:
        """Export to ONNX, build the suite's variants (only fp32 for a baseline), check each against the
        torch model and evaluate it on the test split. The candidate's numbers are its shipped variant's;
        every variant's are in ``variants``. ``dims``: embedding sizes the shipped variant is also
        evaluated at, its embeddings truncated (Matryoshka)."""
        from . import steps
        from .export import export_onnx

        ex = run.suite.export
        t0 = time.perf_counter()
        export_dir = work / "export"
        if not steps.is_done(export_dir, keys["export"]):
            export_onnx(torch_dir, export_dir)
            steps.mark_done(export_dir, keys["export"])
        export_s = time.perf_counter() - t0
        sample = run.data.corpus["text"].head(ex.check_samples).to_list()
        max_seq = run.suite.evaluation.max_seq_length or None
        reference = None
        rows: list[dict] = []
        shipped: dict | None = None
        for name in (["fp32"] if item.baseline else ex.built):
            is_shipped = name == ("fp32" if item.baseline else ex.shipped)
            row_file, row_key = work / "variants" / f"{name}.json", steps.digest([keys["result"], name])
            try:
                row = steps.load(row_file, row_key)
                if row is None:
                    base = None if item.baseline else run.models[item.model.name].path
                    row = self._variant(run, item, name, torch_dir, export_dir, sample, max_seq, reference, progress,
                                        base, dims if is_shipped else ())
                    steps.store(row_file, row_key, {k: v for k, v in row.items() if k != "reference"})
                else:
                    progress("evaluated", {"variant": name, "seconds": 0, "docs_per_s": row["metrics"]["docs_per_s"],
                                           "resumed": True})
            except HarnessError as e:
                if is_shipped:
                    raise
                rows.append({"variant": name, "error": str(e), "passed": False})
                self.hook.harness_warning(message=f"{item.nodeid}: variant {name}: {e}", item=item)
                continue
            reference = row.pop("reference", None)
            if name != "fp32" and rows and "metrics" in rows[0]:
                primary = run.suite.evaluation.primary_metric
                base, value = rows[0]["metrics"].get(primary), row["metrics"].get(primary)
                row["drop"] = None if base is None or value is None else round(base - value, 6)
                row["passed"] = row["drop"] is not None and row["drop"] <= ex.max_drop
            rows.append(row)
            if is_shipped:
                shipped = row
        if shipped is None:
            raise CandidateError(f"the shipped variant {ex.shipped} was not built")
        evaluated = shipped.pop("evaluated")
        for row in rows:
            row.pop("evaluated", None)
            row["shipped"] = row is shipped and not item.baseline
        return {
            "metrics": shipped["metrics"], "encoder": shipped["encoder"], "export_check": shipped["export_check"],
            "variant": shipped["variant"], "variants": rows,
            "per_query": evaluated["per_query"], "rankings": evaluated["rankings"],
            "dims": evaluated.get("dims"),
            "evaluation_cached_from": shipped["cached_from"],
            "timings": {"export_s": round(export_s, 1), **shipped["timings"], "docs_per_s": shipped["metrics"]["docs_per_s"]},
        }

    def _variant(self, run: SuiteRun, item: Item, name: str, torch_dir: Path, export_dir: Path, sample: list[str],
                 max_seq: int | None, reference, progress, base: Path | None = None, dims=()) -> dict:
        """Build, check and evaluate one variant. The first one (fp32) computes the torch ``reference``
        embeddings of ``sample``; for a candidate it also measures how far they moved from the ``base``
        model's (``export_check.embedding_change``, a guard)."""
        from . import cache
        from .encode import OnnxEncoder
        from .export import check_export, torch_embeddings
        from .guards import embedding_change
        from .variants import VARIANTS, build

        ex, ev = run.suite.export, run.suite.evaluation
        t0 = time.perf_counter()
        file = build(export_dir, name, self.device)
        t1 = time.perf_counter()
        encoder = OnnxEncoder(export_dir, self.device, file=file.name, batch_size=ev.batch_size,
                              max_seq_length=max_seq, query_prompt=item.model.query_prompt,
                              document_prompt=item.model.document_prompt, progress=_progress_wanted(self.options))
        change = None
        if reference is None:
            reference = torch_embeddings(torch_dir, sample, self.device, encoder.max_seq_length,
                                         encoder.prompts["document"])
            if base is not None:
                change = embedding_change(torch_embeddings(base, sample, self.device, encoder.max_seq_length,
                                                           encoder.prompts["document"]), reference)
        exact = VARIANTS[name].exact
        check = check_export(reference, encoder, sample, ex.min_cosine if exact else ex.min_cosine_reduced,
                             f"the ONNX {name} variant")
        if change is not None:
            check["embedding_change"] = change
        t2 = time.perf_counter()
        progress("exported", {"variant": name, "seconds": round(t1 - t0, 1), "min_cosine": check["min_cosine"],
                              "provider": encoder.provider})
        info = encoder.describe()
        key = cached = None
        if item.baseline and not getattr(self.options, "no_cache", False):
            key = cache.evaluation_key(encoder.path, run.data, ev, {**info, "dims": list(dims)}, encoder.prompts)
            cached = cache.load(key)
        evaluated = cached or self._evaluate(run, encoder, dims)
        t3 = time.perf_counter()
        if key and not cached:
            cache.store(key, {**evaluated, "run": str(run.run_dir)})
        progress("evaluated", {"variant": name, "seconds": round(t3 - t2, 1), "docs_per_s": evaluated["docs_per_s"],
                               "cached_from": cached["run"] if cached else None})
        info["file"] = os.path.relpath(info["file"], run.run_dir)
        speed_size = {"docs_per_s": evaluated["docs_per_s"], "model_mb": round(file.stat().st_size / 2**20, 1)}
        return {
            "variant": name, "file": info["file"], "provider": encoder.provider,
            "metrics": {**evaluated["metrics"], **speed_size}, "encoder": info, "export_check": check,
            "cached_from": cached["run"] if cached else None, "evaluated": evaluated, "reference": reference,
            "timings": {"build_s": round(t1 - t0, 1), "check_s": round(t2 - t1, 1), "evaluate_s": round(t3 - t2, 1)},
        }

    def _evaluate(self, run: SuiteRun, encoder, dims=()) -> dict:
        """Every evaluator of the suite on the test split, through ``encoder``; then, for each of
        ``dims``, again with the embeddings truncated to that size (encoded once, not timed)."""
        from .encode import Truncated

        out = self._run_evaluators(run, encoder)
        if dims:
            out["dims"] = {str(d): self._run_evaluators(run, Truncated(encoder, d))["metrics"] for d in dims}
        return out

    def _run_evaluators(self, run: SuiteRun, encoder) -> dict:
        ev = run.suite.evaluation
        metrics: dict[str, float] = {}
        per_query: dict[str, dict[str, float]] = {}
        rankings: dict[str, list[str]] = {}
        start = time.perf_counter()
        for name in ev.evaluators:
            try:
                res = self.plugins.registry.evaluators[name].evaluate(encoder, run.data.corpus, run.data.test,
                                                                      ev.k_values)
            except HarnessError:
                raise
            except Exception as e:  # noqa: BLE001 - a plugin's bug fails this candidate, not the run
                owner = self.plugins.registry.owner.get(("evaluators", name), "?")
                hint = " (hint: lower evaluation.batch_size)" if "out of memory" in str(e).lower() else ""
                raise CandidateError(f"evaluator {name!r} (plugin {owner}) raised {type(e).__name__}: {e}{hint}") from e
            metrics.update(res.metrics)
            for q, vals in res.per_query.items():
                per_query.setdefault(q, {}).update(vals)
            rankings.update(res.rankings)
        seconds = time.perf_counter() - start
        return {
            "metrics": {k: round(v, 6) for k, v in metrics.items()},
            "per_query": {q: {m: round(v, 4) for m, v in vals.items()} for q, vals in per_query.items()},
            "rankings": rankings,
            "docs_per_s": round(run.data.corpus.height / max(seconds, 1e-9), 1),
        }

    # --- output ---------------------------------------------------------------------------------

    def _write(self, run: SuiteRun, code: ExitCode | None) -> None:
        """Write results.json (atomically) and, once the suite is done, report.html and ``latest``."""
        from .compare import shipped
        from .report import write_report

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
        if code is not None:
            write_report(run.run_dir)
            latest = run.run_dir.parent / "latest"
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(run.run_dir.name)


def _progress_wanted(options) -> bool:
    import sys

    return sys.stderr.isatty() and not getattr(options, "quiet", False)
