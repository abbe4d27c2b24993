"""The subcommands of ``harness``: each ``cmd_<name>(args)`` returns an exit code; a user's mistake
is raised as :class:`harness.errors.ConfigError` or :class:`harness.errors.DataError`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.errors import ConfigError, DataError, HarnessError, Problem
from harness.exitcodes import ExitCode


def _plugins(specs: list[str]):
    from harness.plugins import from_command_line

    return from_command_line(specs, Path.cwd())


def usage_error(e: ConfigError) -> int:
    """Say every problem of ``e`` and return exit 4."""
    print(f"ERROR: {len(e.problems)} problem(s), nothing was run:", file=sys.stderr)
    for p in e.problems:
        print(f"  {p}", file=sys.stderr)
    return ExitCode.USAGE_ERROR


def _suite_files(paths: list[str]) -> list[Path]:
    """The suite files of ``paths``; a folder without any is said by name."""
    from harness.suite.collect import collect_suite_files

    files = collect_suite_files(paths)
    for p in map(Path, paths or ["suites"]):
        if p.is_dir() and not any(f.parent == p for f in files):
            print(
                f"no suite files in {p} (expected *.toml; files named _*.toml are skipped)", file=sys.stderr
            )
    return files


def cmd_run(args) -> int:
    from harness.outputs import file_problems, folder_problems

    if args.ray_address and args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    if not args.collect_only:  # before any work: a bad output path must not cost a finished run
        wrong = folder_problems(args.out, "--out") + file_problems(args.junitxml, "--junitxml")
        if wrong:
            raise ConfigError(wrong)
    plugins = _plugins(args.plugins)
    files = _suite_files(args.paths)
    ray = None
    if args.executor == "ray" and not args.collect_only:
        from harness.run.executors import RayExecutor

        ray = RayExecutor(args.ray_address)
    try:
        return _run(args, plugins, files, ray)
    finally:
        if ray is not None:
            ray.close()


def _run(args, plugins, files, ray) -> int:
    from harness.run.executors import LocalExecutor
    from harness.run.options import RunOptions
    from harness.run.session import Session, resolve_device
    from harness.suite.collect import collect_items, load_suites
    from harness.suite.load import parse_overrides

    if ray is not None:  # the workers' GPUs decide, not the driver's: a CPU head node can drive a GPU cluster
        device = "cpu" if args.device == "cpu" else ("cuda" if ray.gpus() or args.device == "cuda" else "cpu")
    else:
        device = resolve_device(args.device)
    suites = load_suites(files, plugins, args.profile, device, parse_overrides(args.overrides))
    items = collect_items(suites, args.keyword)
    if args.collect_only:
        return _collect_only(suites, items)
    options = RunOptions(
        device=device,
        out_dir=Path(args.out),
        exitfirst=args.exitfirst,
        resume=args.resume,
        no_cache=args.no_cache,
        quiet=args.quiet,
        plugins=tuple(args.plugins),
    )
    compare = None
    if args.compare:
        from harness.gate.compare import load_reference
        from harness.report.document import read_results

        compare = load_reference(read_results(Path(args.compare)), args.compare)
        if compare["suite"] not in {s.name for s in suites}:
            raise ConfigError(
                f"--compare {args.compare}: it is a run of suite {compare['suite']!r}, "
                f"not of {sorted(s.name for s in suites)}"
            )
    else:
        wanting = [
            Problem(str(s.path), f"thresholds[{i}].against", "'compare' needs --compare RESULTS")
            for s in suites
            for i, t in enumerate(s.thresholds)
            if t.against == "compare"
        ]
        if wanting:
            raise ConfigError(wanting)
    if ray is not None:
        ray.bind(options)
    session = Session(plugins, suites, items, options, ray or LocalExecutor(plugins, options), compare)
    code = session.run()
    if args.junitxml:
        from harness.report.junit import write_junit

        write_junit(Path(args.junitxml), session.runs)
    return code


def _collect_only(suites, items) -> int:
    for suite in suites:
        print(f"<Suite {suite.name} ({suite.path}){f' profile={suite.profile}' if suite.profile else ''}>")
        for model in suite.models:
            print(f"  <Model {model.name} base={model.base}>")
            for item in items:
                if item.suite is suite and item.model is model:
                    kind = "Baseline" if item.baseline else f"Candidate loss={item.loss.type}"
                    print(f"    <{kind} {item.nodeid}>")
        for t in suite.thresholds:
            kinds = ", ".join(f"{k}={getattr(t, k)}" for k in t.KINDS if getattr(t, k) is not None)
            print(
                f"  <Threshold {t.metric} {kinds}{' on ' + ','.join(t.candidates) if t.candidates else ''}>"
            )
        for r in suite.references:
            print(f"  <Reference {r.name} type={r.type}{f' model={r.model}' if r.model else ''}>")
    print(f"\n{sum(not i.untuned for i in items)} candidate(s), {sum(i.baseline for i in items)} baseline(s)")
    return ExitCode.OK if items else ExitCode.NO_CANDIDATES


def cmd_check(args) -> int:
    from harness.suite.collect import load_suites
    from harness.suite.load import describe_keys

    if args.keys:
        print(describe_keys())
        return ExitCode.OK
    plugins = _plugins(args.plugins)
    files = _suite_files(args.paths)
    if not files:
        return ExitCode.NO_CANDIDATES
    suites = load_suites(files, plugins, None, None)
    problems = []
    for suite in suites:  # every profile must be valid too, not just the one used today
        for name in suite.profiles:
            try:
                load_suites([suite.path], plugins, name, None)
            except ConfigError as e:
                problems += [f"{p} (with profile {name!r})" for p in e.problems]
    if problems:
        raise ConfigError([Problem("", "", p) for p in problems])
    for suite in suites:
        n = len(suite.models) * len(suite.losses)
        print(
            f"ok: {suite.path} ({suite.name}: {n} candidate(s), {len(suite.thresholds)} threshold(s), "
            f"profiles: {', '.join(suite.profiles) or 'none'})"
        )
    return ExitCode.OK


def cmd_data(args) -> int:
    from harness.data.write_beir import export_beir
    from harness.outputs import folder_problems
    from harness.run.fitting import resolve_auto_length
    from harness.run.loading import data_ready, load_data
    from harness.run.session import resolve_device
    from harness.suite.collect import load_suites
    from harness.suite.load import parse_overrides

    if args.export:
        wrong = folder_problems(args.export, "--export")
        if wrong:
            raise ConfigError(wrong)
    plugins = _plugins(args.plugins)
    files = _suite_files(args.paths)
    if not files:
        return ExitCode.NO_CANDIDATES
    device = resolve_device(args.device)
    suites = load_suites(files, plugins, args.profile, device, parse_overrides(args.overrides))
    problems, prepared = [], []
    for suite in suites:
        try:
            prepared.append((suite, load_data(plugins, suite, device)))
        except DataError as e:
            problems += [Problem(str(suite.path), "data", m) for m in e.messages]
    if problems:
        raise ConfigError(problems)
    for suite, data in prepared:
        models = {}
        for m in suite.models:  # only the tokenizer is read, for the share of texts each model cuts
            try:
                models[m.name] = plugins.resolve_model(m.base, m.revision).path
            except HarnessError as e:
                print(
                    f"{suite.name}: models {m.name}: {e} (its text lengths are not measured)", file=sys.stderr
                )
        suite, _ = resolve_auto_length(suite, data, models, lambda m: print(f"    {m}"))
        data_ready(plugins, suite, data, models)
        for w in data.warnings:
            print(f"    warning: {w}")
        if args.export:
            folder = Path(args.export) / suite.name
            counts = export_beir(data, folder)
            print(f"    exported to {folder}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return ExitCode.OK


def cmd_plugins(args) -> int:
    plugins = _plugins(args.plugins)
    info = plugins.describe()
    reg = plugins.registry
    if args.json:
        print(json.dumps(info, indent=1))
        return ExitCode.OK
    for p in info:
        print(f"{p['name']} ({p['origin']})")
        print(f"  hooks: {', '.join(p['hooks'])}")
        for kind, names in p["provides"].items():
            table = {"pair_sources": reg.pair_sources, "evaluators": reg.evaluators, "losses": reg.losses}[
                kind
            ]
            for n in names:
                singular = {"pair_sources": "pair source", "evaluators": "evaluator", "losses": "loss"}[kind]
                print(f"  {singular} {n}: {table[n].description}")
    return ExitCode.OK


def cmd_report(args) -> int:
    from harness.report.document import read_results
    from harness.report.html import write_report

    run_dir = Path(args.run_dir)
    doc = read_results(run_dir)  # a missing or damaged results.json: exit 4, naming the file and what's wrong
    outputs = [(c, Path(f)) for c, files in (("ab", args.ab), ("drift", args.drift)) for f in files]
    if outputs:  # every file is read and checked before anything is written
        from harness.monitor.outputs import read_output
        from harness.report.monitoring import attach

        docs = [(c, f, read_output(f, c)) for c, f in outputs]
        for path in attach(run_dir, docs):
            print(path)
    if args.rankings:
        from harness.report.rankings import export_rankings

        for path in export_rankings(doc, Path(args.rankings)):
            print(path)
    from jinja2.exceptions import UndefinedError

    try:
        print(write_report(run_dir.resolve()))
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError, UndefinedError) as e:
        # the file follows the schema but lacks what the page shows: a foreign or hand-edited file, not a bug
        raise ConfigError(
            Problem(
                str(run_dir / "results.json"),
                "",
                f"does not hold what the report shows "
                f"({type(e).__name__}: {e}); not a results.json the harness wrote, or a damaged one",
            )
        )
    return ExitCode.OK
