"""The recipe search of ``[search]`` (:class:`harness.suite.search_table.SearchTable`): Optuna's sampler
proposes each trial's recipe, the candidate's own training code trains it and scores it on the dev split
after every epoch, Optuna's MedianPruner stops a trial that falls behind, and the budget (trials,
minutes) ends the search. The best complete trial on dev wins; the test split is not read here."""

from __future__ import annotations

import time
from pathlib import Path

from harness.core.names import Stage
from harness.errors import CandidateError
from harness.suite.search_table import INTEGER_DIMS, SAMPLERS, TRAINING_DIMS, SearchTable

#: trials trained to their end before the pruner judges: a setting proposed again is told its score
#: (a complete trial to Optuna), so the pruner's own count of complete trials is not enough
PRUNE_AFTER = 2


class Pruned(Exception):
    """A trial stopped after an epoch because its dev score fell below the earlier trials' median."""

    def __init__(self, epoch: int, value: float):
        super().__init__(f"pruned after epoch {epoch} (dev {value:.4f}, below the median of earlier trials)")
        self.epoch = epoch
        self.value = value


def distributions(table: SearchTable) -> dict:
    """Optuna's distribution of each dimension: a list is categorical, a range an int or float one."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for d, spec in table.dims().items():
        if isinstance(spec, list):
            out[d] = CategoricalDistribution(spec)
        elif d in INTEGER_DIMS:
            out[d] = IntDistribution(
                spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step", 1)
            )
        else:
            out[d] = FloatDistribution(
                float(spec["low"]), float(spec["high"]), log=spec.get("log", False), step=spec.get("step")
            )
    return out


def own_setting(table: SearchTable, training, loss) -> dict:
    """The candidate's own recipe in the search's terms: each dimension whose value in the suite (its
    [training] key, its loss and mined negatives) lies in the searched space. The search tries it
    first, so it chooses another recipe only when dev scores that one higher."""
    own = {d: getattr(training, d) for d in TRAINING_DIMS}
    own["num_negatives"] = loss.hard_negatives.num_negatives if loss.hard_negatives is not None else 0
    own["batch_sampler"] = training.batch_sampler if training.batch_sampler in SAMPLERS else None
    own["loss"] = loss.name
    return {d: own[d] for d, spec in table.dims().items() if in_space(own[d], spec, d in INTEGER_DIMS)}


def in_space(value, spec, integer: bool) -> bool:
    """Whether a suite's value is one of a dimension's choices or lies on its range (and its step)."""
    if isinstance(spec, list):
        return value in spec
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        return False
    low, high, step = spec["low"], spec["high"], spec.get("step") or (1 if integer else None)
    if not low <= value <= high:
        return False
    return step is None or abs((value - low) / step - round((value - low) / step)) < 1e-9


def new_study(table: SearchTable, seed: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if table.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER, n_warmup_steps=0)
        if table.pruning
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)


def run_search(
    table: SearchTable,
    seed: int,
    primary: str,
    train,
    progress,
    clock=time.monotonic,
    first: dict | None = None,
) -> dict:
    """Trials until the budget is spent, the first with the values of ``first`` (the suite's own
    recipe, :func:`own_setting`; the sampler proposes the dimensions it leaves out).
    ``train(index, setting, report)`` trains one recipe and returns its training summary
    (``dev_score``, ``chosen_epoch``, ``seconds``, ``memory``), calling ``report(epoch, dev_score,
    final)`` after each epoch (which raises :class:`Pruned` to stop it before its last epoch); a
    :class:`CandidateError` fails that trial only. Returns the search's record for results.json."""
    from optuna.trial import TrialState

    study = new_study(table, seed)
    dists = distributions(table)
    if first:
        study.enqueue_trial(first)
    start, trials, stopped_by, repeats = clock(), [], "trials", 0
    size = space_size(dists)
    while True:
        if table.trials is not None and len(trials) >= table.trials:
            break
        if table.minutes is not None and clock() - start >= table.minutes * 60:
            stopped_by = "minutes"
            break
        if len(trials) == size or repeats >= 100:  # every setting of a finite space was tried
            stopped_by = "space"
            break
        trial = study.ask(dists)
        setting = {d: trial.params[d] for d in dists}
        earlier = next((t for t in trials if t["setting"] == setting), None)
        if earlier is not None:  # the sampler proposed a tried setting: told its score, not trained again
            repeats += 1
            if earlier["state"] == "complete":
                study.tell(trial, earlier["dev_score"])
            else:
                study.tell(
                    trial, state=TrialState.PRUNED if earlier["state"] == "pruned" else TrialState.FAIL
                )
            continue
        repeats = 0
        index = len(trials) + 1
        progress(Stage.TRIAL, {"index": index, "of": table.trials, "setting": setting, "search": True})
        rec = {"number": trial.number, "setting": setting, "dev_history": []}
        if first and trial.number == 0:
            rec["own"] = sorted(first)  # the dimensions whose value is the suite's own

        trained = sum(t["state"] == "complete" for t in trials)

        def report(epoch: float, value: float, final: bool = False, trial=trial, rec=rec, trained=trained):
            step = max(1, round(epoch))
            rec["dev_history"].append({"epoch": step, "dev_score": value})
            trial.report(value, step)
            # a trial at its last epoch is done: kept, not pruned
            if not final and trained >= PRUNE_AFTER and trial.should_prune():
                raise Pruned(step, value)

        t0 = clock()
        try:
            info = train(index - 1, setting, report)
        except Pruned as e:
            rec.update(state="pruned", dev_score=None, pruned_at=e.epoch, note=str(e))
            study.tell(trial, state=TrialState.PRUNED)
        except CandidateError as e:
            rec.update(state="failed", dev_score=None, error=str(e))
            study.tell(trial, state=TrialState.FAIL)
        else:
            score = info.get("dev_score")
            if not rec["dev_history"]:  # a trial re-used (--resume) reported no epochs: its record has them
                rec["dev_history"] = [
                    {"epoch": max(1, round(h["epoch"])), "dev_score": h[f"dev_{primary}"]}
                    for h in info.get("history", [])
                    if f"dev_{primary}" in h
                ]
            rec.update(
                state="complete" if score is not None else "failed",
                dev_score=score,
                chosen_epoch=info.get("chosen_epoch"),
                memory=info.get("memory"),
            )
            if score is None:
                rec["error"] = "no dev score"
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, score)
        rec["seconds"] = round(clock() - t0, 1)
        trials.append(rec)
        progress(Stage.TRIAL_END, {"index": index, "of": table.trials, **rec})
    return record(table, seed, primary, trials, stopped_by, round(clock() - start, 1), first)


def space_size(dists: dict) -> float:
    """How many settings the space has (infinite with a float range)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    n = 1
    for d in dists.values():
        if isinstance(d, CategoricalDistribution):
            n *= len(d.choices)
        elif isinstance(d, IntDistribution):
            n *= (d.high - d.low) // d.step + 1 if not d.log else d.high - d.low + 1
        else:
            return float("inf")
    return n


def record(
    table: SearchTable, seed: int, primary: str, trials: list[dict], stopped_by: str, seconds, first=None
) -> dict:
    """The search's record: every trial, the chosen one (the best complete trial on dev) and how."""
    from harness.train.selection import best

    done = [t for t in trials if t["state"] == "complete"]
    if not done:
        why = "; ".join(f"trial {i + 1}: {t.get('error') or t.get('note')}" for i, t in enumerate(trials))
        raise CandidateError(f"no trial of the search finished ({why or 'the budget ran out first'})")
    chosen = best([t["dev_score"] if t["state"] == "complete" else None for t in trials])
    counts = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "failed")}
    said = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return {
        "trials": trials,
        "chosen": trials[chosen]["setting"],
        "chosen_index": chosen,
        "by": (
            f"best dev {primary} of {len(trials)} trial(s) ({said}), Optuna {table.sampler} sampler "
            f"(seed {seed})" + (", the first trial the suite's own recipe" if first else "")
        ),
        "budget": {"trials": table.trials, "minutes": table.minutes},
        "stopped_by": stopped_by,
        "sampler": table.sampler,
        "pruner": "MedianPruner" if table.pruning else None,
        "seconds": seconds,
    }


def searched(run, item, work: Path, train_once, progress) -> dict:
    """The recipe search of ``[search]`` (:mod:`harness.train.search`): each trial trained with the
    first seed into ``work/search/<i>``, only the best so far keeping its model (the winner is
    adopted as the first seed's training, as a grid's is)."""
    from harness.train.step import drop_model

    table, cfg = run.suite.search, run.suite.training
    seed = cfg.seed_list[0]
    dev_key = "dev_" + run.suite.evaluation.primary_metric
    best: dict = {}

    def train(index: int, setting: dict, report) -> dict:
        def progress_(stage, info):
            progress(stage, info)
            if stage == Stage.EPOCH and info.get(dev_key) is not None:
                report(info["epoch"], info[dev_key], info["epoch"] >= epochs - 1e-6)

        epochs = setting.get("epochs", cfg.epochs)
        out = work / "search" / str(index) / "trained"
        info = train_once(out, setting, seed, None, [], progress_=progress_)
        score = info.get("dev_score")
        if score is not None and score > best.get("score", float("-inf")):
            if best:
                drop_model(best["out"])
            best.update(score=score, out=out)
        elif out.is_dir():
            drop_model(out)
        return info

    found = run_search(
        table,
        table.seed if table.seed is not None else seed,
        run.suite.evaluation.primary_metric,
        train,
        progress,
        first=own_setting(table, cfg, item.loss),
    )
    won = found["trials"][found["chosen_index"]]
    progress(
        Stage.CHOSEN,
        {
            "setting": found["chosen"],
            "dev_score": won["dev_score"],
            "of": len(found["trials"]),
            "search": True,
        },
    )
    return found
