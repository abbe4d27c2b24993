"""How a candidate is trained: mined hard negatives (if its loss asks), the grid's settings tried on
dev, one training per seed at the chosen setting (with ``refit``, trained once more on train + dev for
the epochs dev chose; each exported and evaluated), the learning curve; the seed with the best dev
score ships. Every training is a step re-used by ``--resume``."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness import __version__
from harness.api import ResolvedModel
from harness.errors import CandidateError
from harness.evaluate.evaluation import Evaluation
from harness.plugins import Plugins

if TYPE_CHECKING:
    from harness.run.session import Item, SuiteRun


class Training:
    """Trains candidates on ``device`` with the losses ``plugins`` registered, and has ``evaluation``
    export and evaluate each seed. ``plugin_specs``: the command line's ``-p`` options, for the
    processes of a distributed training."""

    def __init__(self, plugins: Plugins, device: str, evaluation: Evaluation, plugin_specs: tuple[str, ...] = ()):
        self.plugins = plugins
        self.device = device
        self.evaluation = evaluation
        self.plugin_specs = plugin_specs

    def candidate(self, run: SuiteRun, item: Item, resolved: ResolvedModel, work: Path, keys: dict[str, str],
                  progress, result: dict) -> None:
        """Mine (if asked), try the grid's settings on dev, train once per seed at the chosen setting,
        export and evaluate each seed, and draw the learning curve; the result holds every step."""
        from dataclasses import replace

        from harness.train import selection
        from harness.run import steps
        from harness.data import trainset
        from harness.run.steps import digest

        cfg, primary = run.suite.training, run.suite.evaluation.primary_metric
        spec = self.plugins.registry.losses[item.loss.type]
        options = self.loss_options(item, spec)
        mined = None
        if item.loss.hard_negatives is not None:
            mined = self.mined(run, item, resolved, progress)
            result["mining"] = mined["stats"]
        columns = trainset.build(run.data, spec, options, mined and mined["columns"], item.model.query_prompt,
                                 item.model.document_prompt)
        seeds, points = cfg.seed_list, cfg.points()
        trained: list[dict] = []  # every training's summary, for the total time

        def key(setting: dict, seed: int, tag: list) -> str:
            return digest([keys["train"], setting, seed, *tag])

        def fit(out: Path, setting: dict, seed: int, rows: dict, tag: list, keep: bool = True, data=None) -> dict:
            info = self.train(run, item, resolved.path, out, key(setting, seed, tag), progress, spec, options, rows,
                              replace(cfg, **setting, seed=seed), keep, data)
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
        runs, refit = [], None
        for seed in seeds:
            folder = work if seed == seeds[0] else work / "seeds" / str(seed)
            chosen_dir = folder / ("selection" if cfg.refit else "trained")  # what dev chose on
            adopted = grid is not None and seed == seeds[0] and selection.adopt(
                work / "grid" / str(grid["chosen_index"]) / "trained", chosen_dir)
            if adopted:  # the grid's winner is this training: moved, not redone
                progress("trained", {"adopted": True})
                info = json.loads((chosen_dir / ".harness-train.json").read_text())
            else:
                if cfg.refit and steps.is_done(folder / "trained", key(chosen, seed, [])):
                    selection.adopt(folder / "trained", chosen_dir)  # a run without refit trained it: --resume re-uses it
                info = fit(chosen_dir, chosen, seed, columns, [], keep=not cfg.refit)
            if cfg.refit:  # the same choices, trained once more with the dev pairs too: this one ships
                if refit is None:
                    refit = self.refit_data(run, item, resolved, spec, options, progress)
                epochs = max(1, math.ceil(info["chosen_epoch"] - 1e-6))
                progress("refit", {"epochs": epochs, "pairs": trainset.rows(refit["columns"])})
                again = fit(folder / "trained", {**chosen, "epochs": epochs, "select": "last"}, seed,
                            refit["columns"], ["refit"], data=refit["data"])
                drop_model(chosen_dir)  # a model nobody ships
                info = {**info, "chosen_by": info["chosen_by"] + selection.refit_phrase(epochs),
                        "refit": {k: again[k] for k in ("pairs", "steps", "seconds", "history")} | {
                            "epochs": epochs, "mining": refit["mining"]}}
            skeys = {k: digest([v, chosen, seed]) for k, v in keys.items()}
            evaluated = self.evaluation.export_and_evaluate(run, item, folder / "trained", folder, progress, skeys,
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

    def refit_data(self, run: SuiteRun, item: Item, resolved: ResolvedModel, spec, options: dict, progress) -> dict:
        """The data of a refit (dev's queries in train, see :meth:`harness.data.prepare.Prepared.with_dev_in_train`)
        and its training columns; a loss that mines gets negatives mined again for the dev pairs too."""
        from harness.data import trainset

        data = run.data.with_dev_in_train()
        mined = self.mined(run, item, resolved, progress, data) if item.loss.hard_negatives is not None else None
        columns = trainset.build(data, spec, options, mined and mined["columns"], item.model.query_prompt,
                                 item.model.document_prompt)
        return {"data": data, "columns": columns, "mining": mined and mined["stats"]}

    def loss_options(self, item: Item, spec) -> dict:
        """The loss's options, with those that name a model resolved to a local folder."""
        options = dict(item.loss.options)
        for name in spec.model_options:
            if isinstance(options.get(name), str):
                options[name] = str(self.plugins.resolve_model(options[name], None).path)
        return options

    def mined(self, run: SuiteRun, item: Item, resolved: ResolvedModel, progress, data=None) -> dict:
        """The hard negatives of ``item``'s loss entry for the train pairs of ``data`` (default: the run's):
        mined once per setting and mining model in a run (``mining/<key>.json``), re-used by every loss
        that asks for the same, and by --resume."""
        from harness.data import mining
        from harness.run import steps

        data = data or run.data
        cfg = item.loss.hard_negatives
        model_dir = self.mining_model(run, resolved, cfg.model)
        seq = run.suite.training.max_seq_length
        key = steps.digest({"harness": __version__, "data": data.fingerprint, "data_table": vars(run.suite.data),
                            "mining": vars(cfg), "model": str(model_dir), "seq": seq,
                            "prompts": [item.model.query_prompt, item.model.document_prompt],
                            "fingerprint": steps.folder_key(model_dir)})
        file = run.run_dir / "mining" / f"{key}.json"
        found = steps.load(file, key)
        if found is None:
            t0 = time.perf_counter()
            found = mining.mine(data, cfg, model_dir, self.device, seq, item.model.query_prompt,
                                item.model.document_prompt, run.suite.data.seed)
            found["stats"]["model"] = cfg.model
            found["stats"]["seconds"] = round(time.perf_counter() - t0, 1)
            steps.store(file, key, found)
        found["stats"]["warnings"] = mining.warnings(found["stats"], cfg)
        progress("mined", found["stats"])
        return found

    def mining_model(self, run: SuiteRun, resolved: ResolvedModel, name: str) -> Path:
        """The folder of the model ``hard_negatives.model`` names (see :class:`harness.suite.config.HardNegativesTable`)."""
        if name == "base":
            return resolved.path
        model = next((m for m in run.suite.models if m.name == name), None)
        if model is not None:
            return self.plugins.resolve_model(model.base, model.revision).path
        if name in run.suite.candidate_names():
            done = run.results.get(name)
            if not done or done.get("status") == "error" or "model_dir" not in done:
                raise CandidateError(f"hard_negatives.model = {name!r}: that candidate has not been trained in this run "
                                     "(it must be selected, and listed before this loss)")
            return run.run_dir / "models" / name / done["model_dir"] / "trained"
        return self.plugins.resolve_model(name, None).path

    def train(self, run: SuiteRun, item: Item, base: Path, out: Path, key: str, progress, spec, options: dict,
              columns: dict, cfg, keep: bool = True, data=None) -> dict:
        """Train ``item`` into ``out``, or re-use ``out`` when a run with the same key finished it.
        ``keep=False``: only the summary is kept (learning-curve points). ``data``: default the run's."""
        from harness.run import steps
        from harness.train.fit import train

        data = data or run.data
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
            from harness.train.distributed import train_distributed

            work = out.parent / "harness-train-ddp"
            spec_ = {"suite": run.suite, "training": cfg, "base": base, "loss_type": item.loss.type,
                     "loss_options": options, "columns": columns, "data": data,
                     "primary_metric": run.suite.evaluation.primary_metric, "device": self.device, "out": out,
                     "query_prompt": item.model.query_prompt, "document_prompt": item.model.document_prompt,
                     "work_dir": work, "plugin_specs": self.plugin_specs, "cwd": str(Path.cwd())}
            try:
                info = train_distributed(spec_, processes, self.device, out.parent)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        else:
            info = train(base, spec, options, data, cfg, run.suite.evaluation.primary_metric, self.device, out,
                         item.model.query_prompt, item.model.document_prompt, progress=progress,
                         columns=columns).as_dict()
        info_file.write_text(json.dumps(info))
        if not keep:
            drop_model(out)
        steps.mark_done(out, key)
        progress("trained", {"seconds": info["seconds"], "pairs": info["pairs"], "kept": info["chosen_by"],
                             "processes": processes, "dev_score": info.get("dev_score")})
        return info


def drop_model(folder: Path) -> None:
    """Remove a finished training's model from ``folder``, keeping its record (``.harness-train.json``:
    what it chose) and its step key."""
    from harness.run.steps import MARK

    for f in folder.iterdir():
        if f.name in (MARK, ".harness-train.json"):
            continue
        if f.is_dir():
            shutil.rmtree(f)
        else:
            f.unlink()
