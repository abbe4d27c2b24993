"""After shipping: ``harness ab``, ``harness interleave`` and ``harness drift`` (their parsers and
commands). Every output is written whole or not at all (a temporary file renamed), and only after
every input was read."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.errors import ConfigError, Problem
from harness.exitcodes import ExitCode


def add_parsers(sub) -> None:
    ab = sub.add_parser(
        "ab", help="A/B test (or interleaving) from impression logs: per-arm metrics, intervals, a verdict"
    )
    ab.add_argument(
        "logs",
        nargs="*",
        metavar="LOG",
        help="impression logs (JSONL, CSV, Parquet: query, shown, clicked[, arm, session, timestamp, "
        "dwell]); without an 'arm' column each file is an arm named by its stem. With --simulate: two "
        "runs (TREC or JSONL) to simulate instead",
    )
    ab.add_argument(
        "--control",
        metavar="ARM",
        help="the arm the others are compared with (default: "
        "'control' when there is one, else the first arm read)",
    )
    ab.add_argument("--metric", default="mrr", help="the metric the exit code decides on (default: mrr)")
    ab.add_argument(
        "--min-gain", type=float, default=0.0, metavar="G", help="exit 0 only for a gain of G or more"
    )
    ab.add_argument(
        "--min-dwell",
        type=float,
        default=30.0,
        metavar="S",
        help="a click with dwell times is satisfied from S seconds (abandonment; default 30)",
    )
    ab.add_argument(
        "--interleaved", metavar="LOG", help="an interleaved log (`harness interleave` + clicked)"
    )
    ab.add_argument("--json", metavar="OUT", help="write the results (arms, comparisons) as JSON")
    ab.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (and of a simulation)")
    sim = ab.add_argument_group("simulation (before going live)")
    sim.add_argument(
        "--simulate",
        action="store_true",
        help="simulate an A/B split and an interleaved test of the two "
        "runs LOG with a cascade click model over --qrels",
    )
    sim.add_argument(
        "--qrels", metavar="FILE", help="judgements (BEIR TSV or TREC qrels) of the runs' queries"
    )
    sim.add_argument("--impressions", type=int, default=2000, help="impressions per test (default: 2000)")
    sim.add_argument(
        "--click-model", default="navigational", help="perfect, navigational (default), informational"
    )
    sim.add_argument("--log", metavar="PREFIX", help="write PREFIX.ab.jsonl and PREFIX.interleaved.jsonl")

    il = sub.add_parser("interleave", help="merge two runs' rankings into interleaved lists to serve")
    il.add_argument("run_a", metavar="RUN_A", help="a run: JSONL (query, ranking) or TREC")
    il.add_argument("run_b", metavar="RUN_B", help="the other run")
    il.add_argument("--out", required=True, metavar="FILE", help="JSONL: query, shown, teams, runs, method")
    il.add_argument("--method", default="team-draft", choices=("team-draft", "balanced"))
    il.add_argument("--repeat", type=int, default=1, metavar="N", help="lists per query (default: 1)")
    il.add_argument("--seed", type=int, default=0)
    il.add_argument("-k", type=int, default=10, help="length of each list (default: 10)")

    dr = sub.add_parser("drift", help="compare production queries with a release's training data")
    dr.add_argument("artifact", metavar="ARTIFACT", help="a folder written by `harness release`")
    dr.add_argument(
        "--queries",
        required=True,
        metavar="FILE",
        help="a table with a 'query' (or 'text') column: JSONL, CSV, Parquet, or `harness ab` logs",
    )
    dr.add_argument("--corpus", metavar="FILE", help="new documents (JSONL id/_id, text; CSV or Parquet)")
    dr.add_argument("--json", metavar="OUT", help="write the drift results as JSON")
    dr.add_argument("--max-auc", type=float, default=0.75, help="domain classifier AUC (default 0.75)")
    dr.add_argument(
        "--max-new-terms",
        type=float,
        default=0.10,
        help="unseen-word share above the test queries' (default 0.10)",
    )
    dr.add_argument(
        "--max-top1-drop", type=float, default=0.05, help="fall of the mean top-1 similarity (default 0.05)"
    )


def write_json(path: str | None, doc: dict) -> None:
    if not path:
        return
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out)


def _outputs(*pairs) -> None:
    from harness.outputs import file_problems

    wrong = [p for option, value in pairs if value for p in file_problems(value, option)]
    if wrong:
        raise ConfigError(wrong)


def _print_comparisons(doc: dict) -> None:
    for name, arm in doc.get("arms", {}).items():
        vals = ", ".join(f"{m} {arm[m]:.4f}" for m in ("ctr", "mrr", "clicks@10", "abandonment"))
        print(f"  {name}: {arm['impressions']} impressions, {arm['queries']} queries; {vals}")
    for c in doc["comparisons"]:
        need = c["impressions_needed"]
        print(
            f"  {c['arm']} vs {c['against']} {c['metric']}: {c['gain']:+.4f} [{c['ci_low']:+.4f}, "
            f"{c['ci_high']:+.4f}] p={c['p_value']:.3f} {c['verdict']}; {c['impressions']} impressions, "
            f"{'no difference to detect' if need is None else f'{need} needed for 80% power'}"
        )


def cmd_ab(args) -> int:
    from harness.data.impressions import read_impressions
    from harness.monitor import abtest, interleave

    _outputs(("--json", args.json), ("--log", args.log and args.log + ".ab.jsonl"))
    if args.simulate:
        doc = _simulate(args)
    elif args.interleaved:
        if args.logs:
            raise ConfigError(
                Problem("--interleaved", "", "give the interleaved LOG alone, not A/B logs too")
            )
        doc = interleave.analyse_interleaved(
            read_impressions(Path(args.interleaved), need_teams=True), seed=args.seed
        )
        args.metric = "preference"
    else:
        if not args.logs:
            raise ConfigError(
                Problem("LOG", "", "give impression logs (or --interleaved LOG, or --simulate)")
            )
        imps = [i for log in args.logs for i in read_impressions(Path(log))]
        doc = abtest.analyse(imps, args.control, args.min_dwell, args.seed)
    total = doc.get("impressions") or sum(a["impressions"] for a in doc["arms"].values())
    print(f"{doc['kind']}: {total} impressions")
    _print_comparisons(doc)
    metric = args.metric
    ok, line = abtest.decision(doc, metric, args.min_gain)
    doc["decision"] = {"metric": metric, "min_gain": args.min_gain, "passed": ok, "line": line}
    write_json(args.json, doc)
    print(("PASSED: " if ok else "NOT BETTER: ") + line)
    return ExitCode.OK if ok else ExitCode.GATES_FAILED


def _simulate(args) -> dict:
    from harness.monitor import abtest, clickmodel, interleave
    from harness.ship.batch import read_qrels

    if len(args.logs) != 2 or not args.qrels:
        raise ConfigError(Problem("--simulate", "", "give two runs (RUN_A RUN_B) and --qrels FILE"))
    if args.click_model not in clickmodel.PRESETS:
        raise ConfigError(
            Problem(
                "--click-model", "", f"{args.click_model!r}: expected one of {', '.join(clickmodel.PRESETS)}"
            )
        )
    if args.impressions < 2:
        raise ConfigError(Problem("--impressions", "", f"expected 2 or more, got {args.impressions}"))
    names = tuple(Path(p).stem for p in args.logs)
    if names[0] == names[1]:
        names = (names[0] + "-a", names[1] + "-b")
    runs = {n: interleave.read_run(Path(p)) for n, p in zip(names, args.logs)}
    qrels = read_qrels(Path(args.qrels), None, None)
    ab_imps = clickmodel.simulate_ab(runs, qrels, args.impressions, args.click_model, args.seed)
    il_imps = clickmodel.simulate_interleaved(
        runs[names[0]], runs[names[1]], names, qrels, args.impressions, args.click_model, seed=args.seed
    )
    ab = abtest.analyse(ab_imps, args.control or names[1], None, args.seed)
    il = interleave.analyse_interleaved(il_imps, names, args.seed)
    if args.log:
        for suffix, imps in ((".ab.jsonl", ab_imps), (".interleaved.jsonl", il_imps)):
            tmp = Path(args.log + suffix + ".tmp")
            with tmp.open("w") as f:
                for imp in imps:
                    f.write(json.dumps(clickmodel.impression_record(imp)) + "\n")
            os.replace(tmp, args.log + suffix)
    return {
        "kind": "simulation",
        "click_model": {
            "name": args.click_model,
            "click": clickmodel.PRESETS[args.click_model][0],
            "stop": clickmodel.PRESETS[args.click_model][1],
            "depth": 10,
        },
        "impressions": args.impressions,
        "control": ab["control"],
        "arms": ab["arms"],
        "comparisons": ab["comparisons"] + il["comparisons"],
        "interleaved": {k: v for k, v in il.items() if k != "comparisons"},
    }


def cmd_interleave(args) -> int:
    from harness.monitor.interleave import interleave, read_run

    _outputs(("--out", args.out))
    if args.repeat < 1 or args.k < 1:
        raise ConfigError(Problem("--repeat", "", "--repeat and -k must be 1 or more"))
    names = (Path(args.run_a).stem, Path(args.run_b).stem)
    if names[0] == names[1]:
        raise ConfigError(
            Problem("RUN_B", "", f"both runs are named {names[0]!r} (by file stem): rename one")
        )
    lists = interleave(
        read_run(Path(args.run_a)),
        read_run(Path(args.run_b)),
        names,
        args.method,
        args.repeat,
        args.seed,
        args.k,
    )
    if not lists:
        raise ConfigError(Problem("RUN_B", "", "the two runs share no query"))
    tmp = Path(args.out + ".tmp")
    with tmp.open("w") as f:
        for rec in lists:
            f.write(json.dumps(rec) + "\n")
    os.replace(tmp, args.out)
    print(f"{args.out}: {len(lists)} interleaved lists ({args.method}) of {names[0]} and {names[1]}")
    return ExitCode.OK


def run_texts(run_dir: Path, plugins) -> tuple[tuple[dict, str] | None, str]:
    """The run's training and test queries and corpus, read again from its suite (for the drift
    profile), with its data fingerprint; or None and why not (the data moved or changed)."""
    from harness.errors import DataError, HarnessError
    from harness.report.document import read_results
    from harness.run.loading import load_data
    from harness.suite.collect import load_suites
    from harness.suite.load import parse_overrides

    doc = read_results(run_dir)
    try:
        overrides = parse_overrides(doc.get("overrides", []))
        suite = load_suites(
            [Path(doc["suite_file"])], plugins, doc.get("profile"), doc.get("device"), overrides
        )[0]
        data = load_data(plugins, suite, doc.get("device") or "cpu")
    except (ConfigError, DataError, HarnessError, KeyError, OSError) as e:
        return None, f"the run's data could not be read again from {doc.get('suite_file')}: {e}"
    want = (doc.get("data") or {}).get("fingerprint")
    if want and data.fingerprint != want:
        return None, f"the data changed since the run (fingerprint {data.fingerprint}, the run's {want})"
    texts = {
        "train_queries": data.train.queries["text"].to_list(),
        "test_queries": data.test.queries["text"].to_list(),
        "corpus": data.corpus["text"].to_list(),
    }
    return (texts, data.fingerprint), ""


def read_query_texts(path: Path) -> list[str]:
    from harness.data.tables import read_table, text_cell

    table = read_table(path, "table of queries")
    col = "query" if "query" in table.columns else ("text" if "text" in table.columns else None)
    if col is None:
        table.column("query", "--queries")  # names the file and its columns
    return [text_cell(table, i, col, v) for i, v in enumerate(table.columns[col])]


def cmd_drift(args) -> int:
    from harness.monitor.drift import Thresholds, check
    from harness.ship.drift_profile import read_profile
    from harness.ship.index import open_encoder, read_corpus

    _outputs(("--json", args.json))
    profile, emb = read_profile(Path(args.artifact))
    queries = read_query_texts(Path(args.queries))
    documents = None
    if args.corpus:
        documents = [t for _, texts in read_corpus(Path(args.corpus)) for t in texts]
    encoder, fp = open_encoder(Path(args.artifact))
    t = Thresholds(args.max_auc, args.max_new_terms, args.max_top1_drop)
    doc = check(profile, emb, encoder, queries, documents, t)
    doc["artifact"] = {"path": str(args.artifact), "fingerprint": fp}
    write_json(args.json, doc)
    for c in doc["checks"]:
        print(
            f"  {c['name']}: {c['value']:.4f} (threshold {c['threshold']})"
            + (" DRIFTED" if c["drifted"] else "")
        )
    for e in doc["examples"][:5]:
        print(f"  least like training: {e['query'][:70]!r} (nearest {e['similarity']:.3f})")
    print("RETRAIN: production has drifted" if doc["drifted"] else "ok: no drift past the thresholds")
    return ExitCode.GATES_FAILED if doc["drifted"] else ExitCode.OK
