"""The pipeline of one item: train (a candidate), export and evaluate; its result before judging.

The local executor runs it in the driver, a Ray worker in its own process (it needs no session:
see :func:`harness.run.executors.run_job`). Errors are kept in the result (``error``, and
``traceback`` for a crash); a Ctrl-C raises :class:`Interrupted` with what the item had.
"""

from __future__ import annotations

import shutil
import traceback

from harness import __version__
from harness.core.names import Status
from harness.core.suiterun import SuiteRun
from harness.errors import HarnessError
from harness.evaluate.evaluation import Evaluation
from harness.evaluate.plain_speed import run_plain_speed
from harness.plugins import Plugins
from harness.results import CandidateResult, new_result
from harness.run.options import RunOptions
from harness.suite.collect import Item
from harness.train.candidate import CandidateTrainer
from harness.train.static import static_model
from harness.train.student import layer_count


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) while an item ran: ``result`` is what it had, with the status
    :attr:`Status.INTERRUPTED`."""

    def __init__(self, result: CandidateResult):
        super().__init__("interrupted")
        self.result = result


def disk_full(e: BaseException) -> bool:
    """Whether ``e`` (or what caused it) is the disk running out of space."""
    import errno

    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def item_keys(run: SuiteRun, item: Item, device: str) -> dict[str, str]:
    """Step keys of ``item`` (see :mod:`harness.core.records`): what decides each step's output."""
    from harness.core.records import digest

    s, resolved = run.suite, run.models[item.model.name]
    train = {
        "harness": __version__,
        "device": device,
        "data": run.data.fingerprint,
        "data_table": vars(s.data),
        "model": vars(item.model),
        "model_path": str(resolved.path),
        "revision": resolved.revision,
        "loss": None if item.untuned else vars(item.loss),
        "training": None if item.untuned else vars(s.training),
        "search": None if item.untuned or s.search is None else vars(s.search),
        "searched": [vars(x) for x in s.losses if x.name in item.searched],
    }
    result = {**train, "export": vars(s.export), "evaluation": vars(s.evaluation)}
    # a refit changes what ships, not the trainings that chose: those keep their key (and --resume
    # re-uses them)
    chose = {
        **train,
        "training": train["training"] and {k: v for k, v in train["training"].items() if k != "refit"},
    }
    return {"train": digest(chose), "export": digest({**train, "step": "export"}), "result": digest(result)}


class Pipeline:
    def __init__(self, plugins: Plugins, options: RunOptions):
        self.hook = plugins.hook
        self.evaluation = Evaluation(plugins, options.device, options.no_cache, options.progress_bars)
        self.trainer = CandidateTrainer(plugins, options.device, self.evaluation, options.plugins)

    def compute(self, run: SuiteRun, item: Item, keys: dict[str, str]) -> CandidateResult:
        """Train (a candidate), export and evaluate ``item``. A baseline that evaluated has passed;
        a candidate stays ``error`` until the session judges it."""
        resolved = run.models[item.model.name]
        result = {**new_result(item, resolved), "step_key": keys["result"]}
        work = run.run_dir / "models" / item.name
        work.mkdir(parents=True, exist_ok=True)

        def progress(stage: str, info: dict) -> None:
            self.hook.harness_candidate_progress(item=item, stage=stage, info=info)

        try:
            if item.untuned:
                if item.baseline:  # what "x plain sentence-transformers" means for its candidates
                    result["plain_st"] = run_plain_speed(run, resolved.path, self.evaluation.device)
                if item.model.static:  # the token table Model2Vec distils from the untuned base
                    resolved, result["static"] = static_model(run, item, resolved, progress)
                evaluated = self.evaluation.export_and_evaluate(
                    run, item, resolved.path, work, progress, keys, self.evaluation.suite_dims(run)
                )
                result.update(evaluated)
                result["layers"] = layer_count(resolved.path)
                result["status"] = Status.PASSED
            else:
                result.update(self.trainer.train(run, item, resolved, work, keys, progress))
        except KeyboardInterrupt:
            raise Interrupted({**result, "status": Status.INTERRUPTED, "error": "interrupted"}) from None
        except Exception as e:  # noqa: BLE001 - one candidate's crash must not stop the others
            if isinstance(e, HarnessError):
                result["error"] = str(e)
            else:
                result["error"] = f"{type(e).__name__}: {e}"
                result["traceback"] = traceback.format_exc()
                if "out of memory" in str(e).lower():
                    result["error"] += (
                        " (hint: lower training.batch_size or use CachedMultipleNegativesRankingLoss)"
                    )
            if disk_full(e):  # every later item would fail the same way, after its training: stop here
                result["fatal"] = True
                result["error"] += (
                    f" (the disk holding {run.run_dir} is full: the run stops here; free space, "
                    "then `harness run --resume` continues it)"
                )
        if not (work / "trained").exists() and not (work / "export").exists():
            shutil.rmtree(work, ignore_errors=True)
        return result
