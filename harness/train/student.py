"""Smaller students: a layer-reduced copy of a base model, the starting point of a ``[[models]]``
entry with ``layers`` or ``keep_layers`` (sentence-transformers' layer-reduction recipe: the student
is the teacher with only some of its transformer layers, then trained like any candidate)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.core.names import Stage
from harness.errors import CandidateError

RECORD = "student.json"


#: the most layer subsets ``keep_layers`` scores on dev (else: evenly spaced, ending at the last)
MAX_SUBSETS = 10


def evenly_spaced(total: int, keep: int) -> list[int]:
    """``keep`` of ``total`` layers, evenly spaced and ending at the last (whose output the pooling
    read in training): 6 keep 3 -> [1, 3, 5]. (From the first, [0, 2, 4], scored 0.14 nDCG@10 on
    SciFact where [1, 3, 5] scored 0.38 and [0, 3, 5] 0.52, before any training: RESULTS.md.)"""
    return sorted({total - 1 - (i * total) // keep for i in range(keep)})


def layer_subsets(total: int, keep: int) -> list[list[int]]:
    """The subsets ``keep_layers`` chooses among on dev: the first and the last layer kept, every
    choice of the ones between; [] when there are more than :data:`MAX_SUBSETS` (or keep < 2)."""
    from itertools import combinations

    if keep < 2 or keep >= total:
        return []
    subsets = [[0, *mid, total - 1] for mid in combinations(range(1, total - 1), keep - 2)]
    return subsets if len(subsets) <= MAX_SUBSETS else []


def cut(model, layers: list[int]):
    """``model`` (a SentenceTransformer) with only the transformer ``layers``; returns it."""
    import torch

    auto = model[0].auto_model
    owner, attr, blocks = _layer_list(auto)
    setattr(owner, attr, torch.nn.ModuleList([blocks[i] for i in layers]))
    for k in ("num_hidden_layers", "n_layer", "num_layers"):
        if hasattr(auto.config, k):
            setattr(auto.config, k, len(layers))
    return model


def choose_layers(source: Path, keep: int, data, device: str, max_seq_length, primary: str) -> dict | None:
    """Which ``keep`` layers of ``source`` a student keeps: each of :func:`layer_subsets` scored on the
    dev split as it is (untrained), the best kept; ``{"layers", "tried": [{layers, dev}], "by"}``, or
    None (no dev split, or too many subsets: :func:`evenly_spaced`)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    from harness.train.fit import ir_ks

    total = layer_count(source)
    subsets = layer_subsets(total, keep) if total else []
    if not subsets or len(data.dev) == 0:
        return None
    evaluator = InformationRetrievalEvaluator(
        queries=dict(data.dev.queries.iter_rows()),
        corpus=dict(data.dev_corpus.iter_rows()),
        relevant_docs={q: set(r) for q, r in data.dev.relevant().items()},
        name="dev",
        show_progress_bar=False,
        batch_size=32,
        **ir_ks(primary),
    )
    tried = []
    for layers in subsets:
        model = cut(SentenceTransformer(str(source), device=device), layers)
        if isinstance(max_seq_length, int):
            model.max_seq_length = max_seq_length
        scores = evaluator(model)
        key = next(
            (k for k in scores if k.endswith(primary)), next(k for k in scores if k.endswith("ndcg@10"))
        )
        tried.append({"layers": layers, "dev": round(float(scores[key]), 4)})
        del model
    best = max(tried, key=lambda t: t["dev"])
    return {
        "layers": best["layers"],
        "tried": tried,
        "by": f"best dev {primary} of {len(tried)} subsets, untrained",
    }


def layer_count(folder: Path) -> int | None:
    """The number of transformer layers of a sentence-transformers folder (its config.json)."""
    for cfg in (Path(folder) / "config.json", *sorted(Path(folder).glob("*/config.json"))):
        try:
            data = json.loads(cfg.read_text())
        except (OSError, ValueError):
            continue
        for k in ("num_hidden_layers", "n_layer", "num_layers"):
            if isinstance(data.get(k), int):
                return data[k]
    return None


def _layer_list(auto_model):
    """The module list holding the transformer blocks, and its owner and attribute name."""
    import torch

    for owner_name in ("encoder", "transformer", "model", ""):
        owner = getattr(auto_model, owner_name) if owner_name else auto_model
        for attr in ("layer", "layers", "h", "block"):
            blocks = getattr(owner, attr, None)
            if isinstance(blocks, torch.nn.ModuleList):
                return owner, attr, blocks
    raise CandidateError(
        f"cannot find the transformer layers of {type(auto_model).__name__} to make a student"
    )


def make_student(base: Path, out: Path, layers: list[int] | None, keep: int | None) -> dict:
    """Write the student of ``base`` to ``out`` (re-used when it is there with the same layers) and
    return ``{"layers": kept layer numbers, "of": the base's count}``."""
    record = out / RECORD
    if record.is_file():
        info = json.loads(record.read_text())
        if (
            info.get("base") == str(base)
            and (layers is None or info["layers"] == sorted(layers))
            and (keep is None or len(info["layers"]) == keep)
        ):
            return info
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base), device="cpu")
    _, _, blocks = _layer_list(model[0].auto_model)
    total = len(blocks)
    chosen = sorted(layers) if layers is not None else evenly_spaced(total, keep)
    if keep is not None and keep >= total:
        raise CandidateError(f"keep_layers = {keep}: the base has only {total} layers")
    if chosen[-1] >= total:
        raise CandidateError(f"layers = {chosen}: the base has {total} layers (0 to {total - 1})")
    cut(model, chosen)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    info = {"base": str(base), "layers": chosen, "of": total}
    record.write_text(json.dumps(info))
    return info


def distill(
    student: Path,
    teacher: Path,
    texts: list[str],
    out: Path,
    device: str,
    max_seq_length: int | None,
    epochs: int,
    batch_size: int,
    seed: int,
    on_epoch=None,
) -> dict:
    """Embedding distillation (sentence-transformers' MSELoss): ``student`` learns to give ``texts`` the
    embeddings ``teacher`` gives them, for ``epochs``; saved to ``out``. Unlabelled texts are enough.
    ``on_epoch(epoch, model)``, where given, is called after each epoch (a learning curve)."""
    import tempfile
    import time

    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    from harness.export.onnx import quiet_libraries
    from harness.train.compat import warmup

    t0 = time.perf_counter()
    teach = SentenceTransformer(str(teacher), device=device)
    model = SentenceTransformer(str(student), device=device)
    if max_seq_length:
        teach.max_seq_length = model.max_seq_length = max_seq_length
    dims = [
        (getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension)()
        for m in (teach, model)
    ]
    if dims[0] != dims[1]:
        raise CandidateError(
            f"distill_from: the teacher's embeddings have {dims[0]} dimensions, the student's {dims[1]}"
        )
    labels = teach.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
    del teach
    model.model_card_data.widget = [{"text": texts[0]}]  # else the trainer samples widget texts itself
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp, quiet_libraries():
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=1e-4,
            **warmup(0.1),
            save_strategy="no",
            report_to="none",
            seed=seed,
            logging_steps=10**9,
            disable_tqdm=True,
            use_cpu=device == "cpu",
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            loss=losses.MSELoss(model),
            train_dataset=Dataset.from_dict({"sentence": texts, "label": labels.tolist()}),
        )
        from transformers import trainer_callback as tc

        trainer.remove_callback(tc.PrinterCallback)  # it prints the final metrics to stdout
        if on_epoch is not None:

            class EpochEnd(tc.TrainerCallback):
                def on_epoch_end(self, args, state, control, **kwargs):
                    on_epoch(round(state.epoch), model)

            trainer.add_callback(EpochEnd())
        result = trainer.train()
    model.save(str(out))
    info = {
        "teacher": str(teacher),
        "texts": len(texts),
        "epochs": epochs,
        "loss": round(float(result.training_loss), 6),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "distilled.json").write_text(json.dumps(info))
    return info


def student_model(run, item, resolved, device: str, progress):
    """The layer-reduced copy that ``item``'s model asks for (made once per run and model, in
    ``students/<model>``): of its teacher (``distill_from``, the tuned model whose embeddings it then
    learns) where it names one, else of ``resolved``; with ``keep_layers``, the layers chosen on dev
    (:func:`choose_layers`); and what it kept."""
    from dataclasses import replace

    m = item.model
    source = resolved.path
    if m.distill_from is not None:
        source = run.trained_model(
            m.distill_from, "distill_from", "it must be selected too, and run before this one"
        )
    folder = run.run_dir / "students" / m.name
    layers, chosen = m.layers, None
    if layers is None:
        chosen = choose_layers(
            source,
            m.keep_layers,
            run.data,
            device,
            run.suite.evaluation.max_seq_length,
            run.suite.evaluation.primary_metric,
        )
        layers = chosen["layers"] if chosen else None
    info = make_student(source, folder, layers, m.keep_layers)
    info["from"] = m.distill_from or "base"
    if chosen:
        info["chosen"] = chosen
    progress(Stage.STUDENT, info)
    if item.model.distill_from is not None:
        folder, info["distilled"] = distilled_student(run, item, folder, device)
        progress(Stage.DISTILLED, info["distilled"])
    return replace(resolved, path=folder), info


def distilled_student(run, item, student: Path, device: str) -> tuple[Path, dict]:
    """The student after learning the embeddings of its teacher (``distill_from``, a candidate
    trained earlier in this run) for the corpus documents no dev or test query is judged on and the
    training queries; made once per run, model and teacher."""
    from harness.data.mining import corpus_texts

    name = item.model.distill_from
    teacher = run.trained_model(name, "distill_from", "it must be selected too, and run before this one")
    out = run.run_dir / "students" / f"{item.model.name}-from-{name}"
    if (out / "distilled.json").is_file():
        return out, {**json.loads((out / "distilled.json").read_text()), "from": name}
    docs, _ = corpus_texts(run.data)
    texts = docs + run.data.train.queries["text"].to_list()
    cfg = run.suite.training
    done = distill(
        student,
        teacher,
        texts,
        out,
        device,
        cfg.max_seq_length,
        item.model.distill_epochs,
        cfg.batch_size,
        cfg.seed,
    )
    return out, {**done, "from": name}
