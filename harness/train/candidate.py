"""How a candidate is trained: mined hard negatives (if its loss asks), the grid's settings tried on
dev, one training per seed at the chosen setting (with ``refit``, trained once more on train + dev for
the epochs dev chose; each exported and evaluated), the learning curve; the seed with the best dev
score ships. Every training is a step re-used by ``--resume`` (:mod:`harness.train.step`)."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from harness.api import ResolvedModel
from harness.core.names import Stage
from harness.core.suiterun import SuiteRun
from harness.data.negatives import Miner
from harness.evaluate.evaluation import Evaluation
from harness.plugins import Plugins
from harness.results import Trained
from harness.suite.collect import Item
from harness.suite.training_tables import HardNegativesTable
from harness.train.search import searched
from harness.train.static import static_model
from harness.train.step import RECORD, drop_model, fit_step
from harness.train.student import layer_count, student_model

#: the dimensions of a setting that choose the recipe rather than a [training] key
RECIPE_DIMS = ("loss", "num_negatives")
#: [training] keys a [[models]] entry may set for itself
MODEL_KEYS = ("learning_rate", "batch_size")


@dataclass
class Recipe:
    """What a setting trains with: the item (its loss as the setting has it), the loss's spec and
    options, the mining statistics, the training columns and what they hold."""

    item: Item
    spec: object
    options: dict
    mining: dict | None
    columns: dict
    rows_info: dict


class CandidateTrainer:
    """Trains candidates on ``device`` with the losses ``plugins`` registered, and has ``evaluation``
    export and evaluate each seed. ``plugin_specs``: the command line's ``-p`` options, for the
    processes of a distributed training."""

    def __init__(
        self, plugins: Plugins, device: str, evaluation: Evaluation, plugin_specs: tuple[str, ...] = ()
    ):
        self.plugins = plugins
        self.device = device
        self.evaluation = evaluation
        self.plugin_specs = plugin_specs
        self.miner = Miner(plugins.resolve_model, device)

    def train(
        self, run: SuiteRun, item: Item, resolved: ResolvedModel, work: Path, keys: dict[str, str], progress
    ) -> Trained:
        """Mine (if asked), try the grid's settings on dev, train once per seed at the chosen setting,
        export and evaluate each seed, and draw the learning curve: the shipped seed's evaluation
        with the training's record."""
        from harness.core import records
        from harness.core.records import digest
        from harness.data import trainset
        from harness.train import selection

        cfg, primary = model_training(run.suite.training, item.model), run.suite.evaluation.primary_metric
        part: Trained = {}
        base = resolved  # what "base" mines with, a student's and a static model's too
        if item.model.student:
            resolved, part["student"] = student_model(run, item, resolved, self.device, progress)
        if item.model.static:
            resolved, part["static"] = static_model(run, item, resolved, progress)
        part["layers"] = layer_count(resolved.path)
        recipes: dict = {}

        def recipe(setting: dict) -> Recipe:
            """The loss, its options and training columns of a setting (a search may choose the loss
            and the number of mined negatives): made once per loss and negatives."""
            loss = item.loss
            if "loss" in setting:
                loss = next(x for x in run.suite.losses if x.name == setting["loss"])
            if "num_negatives" in setting:
                n = setting["num_negatives"]
                hn = loss.hard_negatives or HardNegativesTable()
                loss = replace(loss, hard_negatives=replace(hn, num_negatives=n) if n else None)
            at = (loss.name, loss.hard_negatives and loss.hard_negatives.num_negatives)
            if at not in recipes:
                it = replace(item, loss=loss)
                spec = self.plugins.registry.losses[loss.type]
                options = loss_options(self.plugins, it, spec)
                mining, columns, rows_info = training_columns(
                    self.miner, run, it, base, spec, options, progress
                )
                recipes[at] = Recipe(it, spec, options, mining, columns, rows_info)
            return recipes[at]

        seeds, points = cfg.seed_list, cfg.points()
        trained: list[dict] = []  # every training's summary, for the total time

        def key(setting: dict, seed: int, tag: list) -> str:
            return digest([keys["train"], setting, seed, *tag])

        def train_once(
            out: Path,
            setting: dict,
            seed: int,
            rows: dict | None,
            tag: list,
            keep: bool = True,
            data=None,
            progress_=None,
        ) -> dict:
            r = recipe(setting)
            # the model's own learning_rate / batch_size hold over a grid's or search's (a static
            # model learns at rates a transformer's range does not reach)
            training = {
                k: v
                for k, v in setting.items()
                if k not in RECIPE_DIMS and not (k in MODEL_KEYS and getattr(item.model, k) is not None)
            }
            info = fit_step(
                run,
                r.item,
                resolved.path,
                out,
                key(setting, seed, tag),
                progress_ or progress,
                r.spec,
                r.options,
                r.columns if rows is None else rows,
                replace(cfg, **training, seed=seed),
                self.device,
                self.plugin_specs,
                keep,
                data,
            )
            trained.append(info)
            return info

        chosen, grid, search = points[0], None, None
        if run.suite.search is not None:
            search = searched(run, item, work, train_once, progress)
            chosen = search["chosen"]
        elif len(points) > 1:
            chosen, grid = grid_trials(points, work, train_once, seeds[0], primary, progress)
        picked = recipe(chosen)
        if picked.mining is not None:
            part["mining"] = picked.mining
        tried = grid or search
        where = "grid" if grid is not None else "search"
        runs, refit = [], None
        for seed in seeds:
            folder = work if seed == seeds[0] else work / "seeds" / str(seed)
            chosen_dir = folder / ("selection" if cfg.refit else "trained")  # what dev chose on
            adopted = (
                tried is not None
                and seed == seeds[0]
                and selection.adopt(work / where / str(tried["chosen_index"]) / "trained", chosen_dir)
            )
            if adopted:  # the grid's winner is this training: moved, not redone
                progress(Stage.TRAINED, {"adopted": True})
                info = json.loads((chosen_dir / RECORD).read_text())
            else:
                if cfg.refit and records.is_done(folder / "trained", key(chosen, seed, [])):
                    selection.adopt(
                        folder / "trained", chosen_dir
                    )  # a run without refit trained it: --resume re-uses it
                info = train_once(chosen_dir, chosen, seed, None, [], keep=not cfg.refit)
            if cfg.refit:  # the same choices, trained once more with the dev pairs too: this one ships
                if refit is None:
                    refit = refit_data(
                        self.miner, run, picked.item, base, picked.spec, picked.options, progress
                    )
                epochs = max(1, math.ceil(info["chosen_epoch"] - 1e-6))
                progress(Stage.REFIT, {"epochs": epochs, "pairs": trainset.rows(refit["columns"])})
                again = train_once(
                    folder / "trained",
                    {**chosen, "epochs": epochs, "select": "last"},
                    seed,
                    refit["columns"],
                    ["refit"],
                    data=refit["data"],
                )
                drop_model(chosen_dir)  # a model nobody ships
                info = {
                    **info,
                    "chosen_by": info["chosen_by"] + selection.refit_phrase(epochs),
                    "refit": {k: again[k] for k in ("pairs", "steps", "seconds", "history")}
                    | {"epochs": epochs, "mining": refit["mining"]},
                }
            skeys = {k: digest([v, chosen, seed]) for k, v in keys.items()}
            evaluated = self.evaluation.export_and_evaluate(
                run,
                item,
                folder / "trained",
                folder,
                progress,
                skeys,
                picked.spec.evaluation_dims(picked.options),
            )
            runs.append({"seed": seed, "folder": folder, "training": info, "evaluated": evaluated})
            if len(seeds) > 1:
                progress(
                    Stage.SEED,
                    {
                        "seed": seed,
                        "dev_score": info["dev_score"],
                        primary: evaluated["metrics"].get(primary),
                    },
                )
        shutil.rmtree(work / "grid", ignore_errors=True)
        shutil.rmtree(work / "search", ignore_errors=True)
        curve = None
        if cfg.learning_curve:
            points_ = []
            for f in sorted(cfg.learning_curve):
                info = train_once(
                    work / "curve" / f"{f:g}",
                    chosen,
                    seeds[0],
                    trainset.subset(picked.columns, f, seeds[0]),
                    [f],
                    keep=False,
                )
                points_.append({"fraction": f, "pairs": info["pairs"], "dev_score": info["dev_score"]})
                progress(Stage.CURVE, points_[-1])
            first = runs[0]["training"]
            points_.append({"fraction": 1.0, "pairs": first["pairs"], "dev_score": first["dev_score"]})
            curve = {"points": points_, "verdict": selection.curve_verdict(points_, primary)}
        part = shipped_part(part, run, runs, work, chosen, grid, curve, trained, picked.rows_info)
        part["training"]["search"] = search
        return part


def model_training(cfg, model):
    """``[training]`` with the ``[[models]]`` entry's own learning_rate and batch_size over it; a static
    model reads whole texts (no max_seq_length)."""
    over = {k: getattr(model, k) for k in MODEL_KEYS if getattr(model, k) is not None}
    if model.static:
        over["max_seq_length"] = None
    return replace(cfg, **over) if over else cfg


def grid_trials(points: list[dict], work: Path, train_once, seed: int, primary: str, progress):
    """Every setting of ``[training.grid]`` trained with the first seed into ``work/grid/<i>``: the
    best on dev, and the grid's record."""
    from harness.train import selection

    trials = []
    for i, point in enumerate(points):
        progress(Stage.TRIAL, {"index": i + 1, "of": len(points), "setting": point})
        info = train_once(work / "grid" / str(i) / "trained", point, seed, None, [])
        trials.append(
            {
                "setting": point,
                "dev_score": info["dev_score"],
                "chosen_epoch": info["chosen_epoch"],
                "seconds": info["seconds"],
            }
        )
    best = selection.best([t["dev_score"] for t in trials])
    grid = {
        "trials": trials,
        "chosen": points[best],
        "chosen_index": best,
        "by": f"best dev {primary} of {len(points)} settings (seed {seed})",
    }
    progress(
        Stage.CHOSEN, {"setting": points[best], "dev_score": trials[best]["dev_score"], "of": len(points)}
    )
    return points[best], grid


def shipped_part(
    part: Trained, run: SuiteRun, runs: list[dict], work: Path, chosen: dict, grid, curve, trained, rows_info
) -> Trained:
    """What a trained candidate gives: the seed dev chose ships (its evaluation, its training's record
    with the grid, the curve and the time of every training); with several seeds, their summary and
    the mean values that gate."""
    from harness.train import selection

    primary = run.suite.evaluation.primary_metric
    ship = runs[selection.best([r["training"]["dev_score"] for r in runs])]
    evaluated = ship["evaluated"]
    training = {
        **ship["training"],
        "seed": ship["seed"],
        "setting": chosen,
        "grid": grid,
        "learning_curve": curve,
        "total_seconds": round(sum(t["seconds"] for t in trained), 1),
        "trainings": len(trained),
        "columns": rows_info["columns"],
        "negatives": rows_info["negatives"],
    }
    training["embedding_change"] = next(
        (
            v["export_check"]["embedding_change"]
            for v in evaluated["variants"]
            if "embedding_change" in v.get("export_check", {})
        ),
        None,
    )
    part.update(evaluated)
    part["timings"] = {"train_s": training["total_seconds"], **evaluated["timings"]}
    part["training"] = training
    part["model_dir"] = os.path.relpath(ship["folder"], work)
    if len(runs) > 1:
        gated = {primary, *(t.metric for t in run.suite.thresholds)}
        part["seeds"] = selection.summarise(runs, ship["seed"], primary, gated)
        part["metrics"] = {**part["metrics"], **part["seeds"]["mean"]}
        part["per_query"] = selection.mean_per_query([r["evaluated"]["per_query"] for r in runs])
        if part.get("dims"):
            part["dims"] = selection.mean_dims([r["evaluated"]["dims"] for r in runs])
    return part


def refit_data(
    miner: Miner, run: SuiteRun, item: Item, resolved: ResolvedModel, spec, options: dict, progress
) -> dict:
    """The data of a refit (dev's queries in train, see
    :meth:`harness.data.prepare.Prepared.with_dev_in_train`)
    and its training columns; a loss that mines gets negatives mined again for the dev pairs too."""
    data = run.data.with_dev_in_train()
    mining, columns, _ = training_columns(miner, run, item, resolved, spec, options, progress, data)
    return {"data": data, "columns": columns, "mining": mining}


def training_columns(
    miner: Miner, run: SuiteRun, item: Item, resolved: ResolvedModel, spec, options: dict, progress, data=None
) -> tuple[dict | None, dict, dict]:
    """``item``'s training columns from the train pairs of ``data`` (default: the run's), with the hard
    negatives its loss mines (``resolved``: the model "base" mines with): (the mining statistics or
    None, the columns, what they hold)."""
    from harness.data import trainset

    data = data or run.data
    mined = miner.mined(run, item, resolved, progress, data) if item.loss.hard_negatives is not None else None
    columns, rows_info = trainset.build(
        data,
        spec,
        options,
        mined and mined["columns"],
        item.model.query_prompt,
        item.model.document_prompt,
        run.suite.data.seed,
    )
    return mined and mined["stats"], columns, rows_info


def loss_options(plugins: Plugins, item: Item, spec) -> dict:
    """The loss's options, with those that name a model resolved to a local folder."""
    options = dict(item.loss.options)
    for name in spec.model_options:
        if isinstance(options.get(name), str):
            options[name] = str(plugins.resolve_model(options[name], None).path)
    return options
