"""The ``harness`` command line: its subcommands, options and help (the exit codes included)."""

from __future__ import annotations

import argparse

from harness.exitcodes import ExitCode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness",
        description="Fine-tune, export, evaluate and gate embedding models.",
        epilog=_exit_codes(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run suites (default: suites/)")
    run.add_argument(
        "paths", nargs="*", metavar="PATH", help="suite files or folders (files named _* are skipped)"
    )
    run.add_argument(
        "-k", dest="keyword", metavar="EXPR", help="select candidates: words, and/or/not, parentheses"
    )
    run.add_argument(
        "-x", "--exitfirst", action="store_true", help="stop at the first failed or errored candidate"
    )
    run.add_argument(
        "--collect-only", action="store_true", help="list suites, models, candidates and thresholds"
    )
    run.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: CUDA when torch sees a GPU, else the CPU with each suite's cpu_profile (default)",
    )
    run.add_argument("--out", default="reports", metavar="DIR", help="output folder (default: reports/)")
    run.add_argument("--profile", metavar="NAME", help="merge [profiles.NAME] of each suite over it")
    add_set(run)
    run.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="PLUGIN",
        help="load a plugin file or module (repeatable); -p no:NAME blocks one",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    run.add_argument("--junitxml", metavar="FILE", help="write one JUnit testcase per (candidate, threshold)")
    run.add_argument(
        "--compare",
        metavar="RESULTS",
        help="a previous run's results.json (or run folder): gate against its shipped model too",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the newest run of each suite: re-use every step that finished with the same "
        "data and settings (trained models, exports, evaluations), redo the rest",
    )
    run.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: baselines and candidates one after another here (default); ray: each one a task "
        'of a Ray cluster (pip install ".[ray]")',
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --executor ray: auto (the cluster this machine belongs to), ray://HOST:10001 "
        "(Ray Client); default: $RAY_ADDRESS, else a new local Ray instance",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="re-evaluate untuned baselines even when an identical evaluation is cached",
    )

    check = sub.add_parser("check", help="validate suites without running anything")
    check.add_argument("paths", nargs="*", metavar="PATH", help="suite files or folders (default: suites/)")
    check.add_argument("--keys", action="store_true", help="print every suite key with its type and default")
    check.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="PLUGIN",
        help="load a plugin file or module (repeatable); -p no:NAME blocks one",
    )

    data = sub.add_parser(
        "data", help="load, clean and split suites' data as `run` would; print what was found"
    )
    data.add_argument("paths", nargs="*", metavar="PATH", help="suite files or folders (default: suites/)")
    data.add_argument(
        "--export",
        metavar="DIR",
        help="write each suite's prepared data as a BEIR folder DIR/<suite>/ (with train_rows.jsonl)",
    )
    data.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="the device whose profile applies, as with `run` (default: auto)",
    )
    data.add_argument("--profile", metavar="NAME", help="merge [profiles.NAME] of each suite over it")
    add_set(data)
    data.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="PLUGIN",
        help="load a plugin file or module (repeatable); -p no:NAME blocks one",
    )

    plugins = sub.add_parser("plugins", help="list plugins and what they provide")
    plugins.add_argument("--json", action="store_true", help="machine-readable: one object per plugin")
    plugins.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="PLUGIN",
        help="load a plugin file or module too (repeatable); -p no:NAME blocks one",
    )

    report = sub.add_parser("report", help="re-render report.html of a run from its results.json")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, or reports/<suite>/latest")
    report.add_argument(
        "--rankings", metavar="DIR", help="also write each row's test ranking as DIR/<row>.trec (top 10)"
    )
    for option, command in (("--ab", "harness ab"), ("--drift", "harness drift")):
        report.add_argument(
            option,
            action="append",
            default=[],
            metavar="FILE",
            help=f"show the output of `{command} --json` in the report (repeatable; kept in RUN_DIR/monitor)",
        )

    rel = sub.add_parser(
        "release", help="write a run's shipped candidate as a self-describing model artifact"
    )
    rel.add_argument("run_dir", metavar="RUN", help="a run folder, or reports/<suite>/latest")
    rel.add_argument("--to", required=True, metavar="DIR", help="new (or empty) folder for the artifact")
    rel.add_argument(
        "--candidate",
        metavar="NAME",
        help="default: the run's shipped candidate (a hybrid one too: NAME+bm25)",
    )
    rel.add_argument("--force", action="store_true", help="release a candidate that did not pass its gates")
    rel.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="PLUGIN",
        help="a plugin the run's data needs (its drift profile reads the data again; repeatable)",
    )

    enc = sub.add_parser(
        "encode", help="encode a corpus with an artifact into Parquet, or --check such a file"
    )
    enc.add_argument("artifact", metavar="ARTIFACT", help="a folder written by `harness release`")
    enc.add_argument(
        "--corpus", metavar="PATH", help="JSONL (id/_id, text[, title]), CSV or Parquet (id, text)"
    )
    enc.add_argument("--out", metavar="FILE", help="Parquet file of (id, vector)")
    enc.add_argument("--append", action="store_true", help="add to --out; refused if another model made it")
    enc.add_argument(
        "--check",
        metavar="FILE",
        help="exit 1 unless FILE's embeddings (and a hybrid's BM25 index beside it) were made by ARTIFACT "
        "(and from --corpus, when given)",
    )
    enc.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    srch = sub.add_parser(
        "search", help="exact top-k search of an index (a hybrid artifact's: fused with BM25), or a batch"
    )
    srch.add_argument("file", metavar="FILE", help="a Parquet file written by `harness encode`")
    srch.add_argument("artifact", metavar="ARTIFACT", help="the released model that wrote FILE (checked)")
    srch.add_argument("query", metavar="QUERY", nargs="?", help="the query text (or --queries FILE)")
    srch.add_argument("-k", type=int, default=10, help="how many results (default: 10)")
    srch.add_argument("--queries", metavar="FILE", help="a batch: JSONL (_id or id, text) or TSV (id, text)")
    srch.add_argument(
        "--qrels", metavar="FILE", help="judgements (BEIR TSV or TREC qrels): print the report's metrics"
    )
    srch.add_argument("--json", metavar="OUT", help="write the metrics (and per-query values) as JSON")
    srch.add_argument("--trec", metavar="OUT", help="write the rankings as a TREC run")
    srch.add_argument("--jsonl", metavar="OUT", help="write the rankings as JSONL")
    from harness.cli.monitor import add_parsers

    add_parsers(sub)
    return p


def _exit_codes() -> str:
    import textwrap

    rows = [
        textwrap.fill(f"{int(c)} {c.name}: {c.meaning}", 100, initial_indent="  ", subsequent_indent="      ")
        for c in ExitCode
    ]
    return "exit codes:\n" + "\n".join(rows)


def add_set(command: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): a suite key over the file and the profile."""
    command.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a suite key over the file and the profile (repeatable), e.g. --set training.epochs=4",
    )
