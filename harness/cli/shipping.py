"""The shipping subcommands: ``release`` (with the drift profile), ``encode`` and ``search`` (a
single query or a batch)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.cli.commands import _plugins
from harness.errors import ConfigError, Problem
from harness.exitcodes import ExitCode


def cmd_release(args) -> int:
    from harness.outputs import new_folder_problems
    from harness.ship.release import release

    wrong = new_folder_problems(args.to, "--to")
    if wrong:
        raise ConfigError(wrong)
    from harness.cli.monitor import run_texts

    drift, note = run_texts(Path(args.run_dir), _plugins(args.plugins))
    if drift is None:
        print(f"note: no drift profile ({note}); `harness drift` needs one", file=sys.stderr)
    m = release(Path(args.run_dir), Path(args.to), args.candidate, args.force)
    if drift is not None:
        from harness.ship.drift_profile import add_profile

        add_profile(Path(args.to), *drift)
    print(
        f"released {m['candidate']} of {m['suite']} (run {m['run_id']}) to {args.to}; fingerprint "
        f"{m['fingerprint']}" + ("; FORCED: it did not pass its gates" if m["forced"] else "")
    )
    return ExitCode.OK


def cmd_encode(args) -> int:
    from harness.outputs import file_problems
    from harness.ship import index

    if args.check:
        if not Path(args.check).is_file():
            raise ConfigError(
                Problem(
                    "--check",
                    "",
                    f"{args.check}: no such file (expected a Parquet file written by `harness encode`)",
                )
            )
        ok, message = index.check(
            Path(args.check), Path(args.artifact), corpus=Path(args.corpus) if args.corpus else None
        )
        print(message, file=sys.stdout if ok else sys.stderr)
        return ExitCode.OK if ok else ExitCode.GATES_FAILED
    if not (args.corpus and args.out):
        raise ConfigError("harness encode: give --corpus and --out (or --check FILE)")
    wrong = file_problems(args.out, "--out")
    if wrong:
        raise ConfigError(wrong)
    r = index.encode_corpus(
        Path(args.artifact),
        Path(args.corpus),
        Path(args.out),
        args.append,
        progress=sys.stderr.isatty() and not args.quiet,
    )
    print(f"{r['file']}: {r['rows']} vectors, model fingerprint {r['fingerprint']}")
    if r["bm25"]:
        print(f"{r['bm25']}: the BM25 index of the same {r['rows']} documents (a hybrid artifact)")
    return ExitCode.OK


def cmd_search(args) -> int:
    from harness.ship.index import search

    if args.k < 1:
        raise ConfigError(Problem("-k", "", f"expected a number of results >= 1, got {args.k}"))
    if not Path(args.file).is_file():
        raise ConfigError(
            Problem(
                "FILE", "", f"{args.file}: no such file (expected a Parquet file written by `harness encode`)"
            )
        )
    if args.queries is None:
        if args.query is None or not args.query.strip():
            raise ConfigError(Problem("QUERY", "", "the query is empty (give QUERY or --queries FILE)"))
        if args.qrels or args.json or args.trec or args.jsonl:
            raise ConfigError(
                Problem("--qrels", "", "--qrels, --json, --trec and --jsonl need --queries FILE")
            )
        doc_ids, top, scores = search(Path(args.file), Path(args.artifact), [args.query], args.k)
        for i, score in zip(top[0], scores[0]):
            print(f"{score:.4f}\t{doc_ids[i]}")
        return ExitCode.OK
    if args.query is not None:
        raise ConfigError(Problem("QUERY", "", "give QUERY or --queries FILE, not both"))
    return batch_search(args)


def batch_search(args) -> int:
    """``harness search FILE ARTIFACT --queries Q [--qrels R] [--json|--trec|--jsonl OUT]``."""
    import pyarrow.parquet as pq

    from harness.outputs import file_problems
    from harness.ship import batch
    from harness.ship.index import search

    for flag in ("json", "trec", "jsonl"):
        wrong = getattr(args, flag) and file_problems(getattr(args, flag), f"--{flag}")
        if wrong:
            raise ConfigError(wrong)
    queries = batch.read_queries(Path(args.queries))
    qrels = None
    manifest = (
        json.loads((Path(args.artifact) / "harness-artifact.json").read_text())
        if (Path(args.artifact) / "harness-artifact.json").is_file()
        else {}
    )
    k_values = manifest.get("k_values") or [1, 3, 5, 10, 100]
    if args.qrels:
        ids = set(pq.read_table(args.file, columns=["id"]).column("id").to_pylist())
        qrels = batch.read_qrels(Path(args.qrels), {q for q, _ in queries}, ids)
    depth = max(args.k, *k_values) if qrels else args.k
    doc_ids, top, scores = search(Path(args.file), Path(args.artifact), [t for _, t in queries], depth)
    batch.write_rankings(
        doc_ids, top, scores, queries, args.k, args.trec, args.jsonl, manifest.get("candidate", "harness")
    )
    print(f"{len(queries)} queries searched over {len(doc_ids)} documents")
    if qrels is None:
        return ExitCode.OK
    result = batch.evaluate(doc_ids, top, queries, qrels, k_values)
    print(f"{result['queries']} judged queries ({result['unjudged']} without a relevant document left out)")
    for name, value in result["metrics"].items():
        print(f"{name}\t{value:.4f}")
    if args.json:
        out = {
            "artifact": str(args.artifact),
            "candidate": manifest.get("candidate"),
            "fingerprint": manifest.get("fingerprint"),
            "hybrid": manifest.get("hybrid"),
            "file": str(args.file),
            "queries_file": str(args.queries),
            "qrels_file": str(args.qrels),
            "documents": len(doc_ids),
            **result,
        }
        Path(args.json).write_text(json.dumps(out, indent=1))
    return ExitCode.OK
