"""Fine-tuning with sentence-transformers' trainer. The dev split (never the test split) chooses
which epoch is kept; the training loss and dev metric over steps are returned for the report."""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from harness.api import LossSpec
from harness.core.names import Stage
from harness.data.prepare import Prepared
from harness.errors import CandidateError
from harness.suite.training_tables import TrainingTable


@dataclass
class TrainResult:
    model_dir: Path
    seconds: float
    pairs: int
    steps: int
    chosen_epoch: float | None
    chosen_by: str
    history: list[dict] = field(default_factory=list)  #: loss and dev metrics over steps
    dev_score: float | None = None  #: the kept model's dev primary metric (what a grid and seeds choose by)
    memory: dict | None = None  #: the memory plan and the measured peak (:mod:`harness.train.memory`)
    precision: str = "fp32"  #: what it trained in (:func:`precision_of`)

    def as_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 1),
            "pairs": self.pairs,
            "steps": self.steps,
            "pairs_per_s": round(self.pairs * max(1, self.epochs_run) / self.seconds, 2)
            if self.seconds
            else None,
            "chosen_epoch": self.chosen_epoch,
            "chosen_by": self.chosen_by,
            "history": self.history,
            "dev_score": self.dev_score,
            "memory": self.memory,
            "precision": self.precision,
        }

    @property
    def epochs_run(self) -> int:
        return max((int(math.ceil(h.get("epoch", 0))) for h in self.history), default=1)


def precision_of(precision: str, device: str) -> str:
    """The precision a training runs in: ``auto`` is bf16 (fp16 where the GPU lacks bf16) on CUDA and
    fp32 on the CPU; an explicit one is kept, bf16 on a CPU too (autocast: fast where the CPU has
    AVX-512 BF16 or AMX). fp16 on a CPU is refused when the suite loads."""
    if precision != "auto":
        return precision
    if device != "cuda":
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def precision_flags(precision: str, device: str) -> dict:
    """The trainer's mixed-precision flag for :func:`precision_of`."""
    chosen = precision_of(precision, device)
    return {} if chosen == "fp32" else {chosen: True}


def fit(
    base_dir: Path,
    loss: LossSpec,
    loss_options: dict,
    data: Prepared,
    cfg: TrainingTable,
    primary_metric: str,
    device: str,
    out_dir: Path,
    query_prompt: str = "",
    document_prompt: str = "",
    progress=None,
    work_dir: Path | None = None,
    columns: dict[str, list] | None = None,
) -> TrainResult:
    """Train ``base_dir`` on ``columns`` (default: the train pairs of ``data``, see
    :func:`harness.data.trainset.build`) and save the kept model to ``out_dir``. The dev split of ``data``
    is evaluated after every epoch; with ``select = "best_dev"`` the best epoch is kept.

    ``progress(stage, info)`` is called after every epoch with the epoch, its last loss and dev metric.
    ``work_dir``: the checkpoint folder (default: a new one beside ``out_dir``); the processes of a
    distributed training share one (see :mod:`harness.train.distributed`)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    from harness.core.memory import PeakMeter
    from harness.data.trainset import build, rows
    from harness.train import memory
    from harness.train.compat import gradient_checkpointing, length_settable, warmup

    if columns is None:
        columns, _ = build(data, loss, loss_options, None, query_prompt, document_prompt)
    n_rows = rows(columns)
    if not n_rows:
        raise CandidateError("the train split has no (query, relevant document) pairs")
    has_dev = len(data.dev) > 0
    plan = memory.fitted(base_dir, loss, loss_options, columns, cfg, device, has_dev)
    if progress is not None:
        progress(Stage.MEMORY, plan.as_dict())
    model = SentenceTransformer(str(base_dir), device=device)
    if cfg.max_seq_length and length_settable(model):
        model.max_seq_length = cfg.max_seq_length
    if plan.gradient_checkpointing:
        gradient_checkpointing(model)
    dataset = Dataset.from_dict(columns)
    first = next(iter(columns))
    model.model_card_data.widget = [
        {"text": columns[first][0]}
    ]  # else the trainer samples widget texts itself
    try:
        name, options = memory.with_loss(loss.name, loss_options, plan.loss, plan.mini_batch_size)
        loss_module = memory.build_loss(loss, model, name, options)
    except (TypeError, ValueError) as e:
        raise CandidateError(f"loss {loss.name}: {e}") from None

    keep_best = has_dev and cfg.select == "best_dev"
    evaluator = None
    metric_key = None
    if has_dev:
        evaluator = InformationRetrievalEvaluator(
            queries={q: query_prompt + t for q, t in data.dev.queries.iter_rows()},
            corpus={d: document_prompt + t for d, t in data.dev_corpus.iter_rows()},
            relevant_docs={q: set(r) for q, r in data.dev.relevant().items()},
            name="dev",
            batch_size=plan.eval_batch_size or cfg.eval_batch_size,
            show_progress_bar=False,
            **ir_ks(primary_metric),
        )
        sim = model.similarity_fn_name or "cosine"
        metric_key = f"eval_dev_{sim}_{primary_metric}"

    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="harness-train-", dir=out_dir.parent))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        **warmup(cfg.warmup_ratio),
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        batch_sampler=loss.batch_sampler if cfg.batch_sampler == "auto" else cfg.batch_sampler,
        eval_strategy="epoch" if has_dev else "no",
        save_strategy="epoch" if keep_best else "no",
        save_total_limit=1,
        load_best_model_at_end=keep_best,
        metric_for_best_model=metric_key if keep_best else None,
        greater_is_better=True,
        logging_steps=max(1, math.ceil(n_rows / cfg.batch_size / 10)),
        report_to="none",
        use_cpu=device == "cpu",
        dataloader_drop_last=False,
        disable_tqdm=not sys.stderr.isatty(),
        **precision_flags(cfg.precision, device),
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss_module, evaluator=evaluator
    )
    _quiet_progress(trainer)
    meter = PeakMeter(device, interval=0.01)  # steps take seconds; new peaks the kernel counts exactly
    guard = memory.Guard(meter, plan)
    trainer.add_callback(guard.callback)
    if progress is not None:
        trainer.add_callback(_epoch_reporter(progress, metric_key, "dev_" + primary_metric))
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():  # the trainer's note on choosing checkpoints by number, on every run
            warnings.filterwarnings("ignore", message="mtime may not be reliable")
            with meter:
                trainer.train()
    except BaseException:  # Ctrl-C, SIGTERM, a crash: no checkpoint folder is left behind
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        seconds = time.perf_counter() - start
    plan.peak = meter.peak
    stopped = guard.message(trainer.state.max_steps)
    if stopped:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        raise CandidateError(stopped)
    history = [
        {k: v for k, v in h.items() if k in ("step", "epoch", "loss", metric_key, "learning_rate")}
        for h in trainer.state.log_history
        if "loss" in h or (metric_key and metric_key in h)
    ]
    for h in history:
        if metric_key and metric_key in h:
            h["dev_" + primary_metric] = h.pop(metric_key)
    chosen_epoch, chosen_by = float(cfg.epochs), "last epoch"
    dev_scores = [h["dev_" + primary_metric] for h in history if "dev_" + primary_metric in h]
    dev_score = dev_scores[-1] if dev_scores else None
    if keep_best and trainer.state.best_model_checkpoint:
        best_step = int(Path(trainer.state.best_model_checkpoint).name.rsplit("-", 1)[-1])
        steps_per_epoch = trainer.state.max_steps / cfg.epochs
        chosen_epoch = round(best_step / steps_per_epoch, 2)
        dev_score = trainer.state.best_metric
        chosen_by = f"best dev {primary_metric} ({trainer.state.best_metric:.4f}) over {cfg.epochs} epoch(s)"
    if trainer.is_world_process_zero():  # one process saves, also under DDP
        model.save_pretrained(str(out_dir))
    if work_dir is None:  # a shared one is removed by whoever made it, once every process is done
        shutil.rmtree(work, ignore_errors=True)
    return TrainResult(
        out_dir,
        seconds,
        n_rows,
        trainer.state.global_step,
        chosen_epoch,
        chosen_by,
        history,
        dev_score,
        plan.as_dict(),
        precision_of(cfg.precision, device),
    )


def _epoch_reporter(progress, metric_key: str | None, name: str):
    from transformers import TrainerCallback

    class EpochReporter(TrainerCallback):
        def _last_loss(self, state):
            return next((h["loss"] for h in reversed(state.log_history) if "loss" in h), None)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metric_key and metrics and metric_key in metrics:
                progress(
                    Stage.EPOCH,
                    {
                        "epoch": round(state.epoch or 0, 2),
                        "loss": self._last_loss(state),
                        name: metrics[metric_key],
                    },
                )

        def on_epoch_end(self, args, state, control, **kwargs):
            if not metric_key:
                progress(Stage.EPOCH, {"epoch": round(state.epoch or 0, 2), "loss": self._last_loss(state)})

    return EpochReporter()


def _quiet_progress(trainer) -> None:
    """Keep the progress bar but not the dict of numbers it prints at every logging step
    (the history goes to results.json and the report instead)."""
    from transformers import trainer_callback as tc

    class Quiet(tc.ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    trainer.remove_callback(tc.PrinterCallback)
    if trainer.pop_callback(tc.ProgressCallback) is not None:
        trainer.add_callback(Quiet())


def ir_ks(primary_metric: str) -> dict:
    """Make the dev evaluator compute the primary metric at its cut-off."""
    name, _, k = primary_metric.partition("@")
    k_list = sorted({int(k) if k.isdigit() else 10, 10})
    return {
        "mrr_at_k": k_list,
        "ndcg_at_k": k_list,
        "accuracy_at_k": k_list,
        "precision_recall_at_k": k_list,
        "map_at_k": sorted(set(k_list) | {100}),
    }
