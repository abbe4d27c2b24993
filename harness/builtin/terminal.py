"""The terminal reporter, pytest-style: a header, one line per baseline/candidate, a summary line."""

from __future__ import annotations

import sys
import time

from harness import hookimpl
from harness.builtin.progress_lines import duration, progress_line
from harness.core.names import Status
from harness.gate.gates import describe

_started: dict[str, float] = {}
_primary: dict[str, str] = {}
_baseline: dict[str, dict] = {}


def _out(line: str = "") -> None:
    print(line, file=sys.stdout, flush=True)


def _rule(text: str) -> str:
    pad = max(0, 78 - len(text) - 2) // 2
    return f"{'=' * pad} {text} {'=' * pad}"


@hookimpl
def harness_sessionstart(session):
    from harness import __version__

    _out(_rule("harness session starts"))
    profiles = sorted({s.profile for s in session.suites if s.profile})
    _out(
        f"harness {__version__} · device {session.device}"
        + (f" · profile {', '.join(profiles)}" if profiles else "")
        + "".join(f" · --set {o}" for o in sorted({o for s in session.suites for o in s.overrides}))
        + f" · output {session.out_dir}"
    )
    from harness.core.machine import cpu_description

    cpu = cpu_description()
    _out(cpu_line(cpu))
    if session.executor.kind != "local":
        _out(f"executor {session.executor.kind} ({session.executor.describe().get('cluster', '')})")


def cpu_line(cpu: dict) -> str:
    """The header's line of the CPU (``environment.cpu``) that every speed figure is this machine's."""
    flags = ", ".join(cpu["flags"]) or "no AVX2"
    return f"cpu {cpu['model']} · {cpu['cores']} cores · {flags} (speeds are this machine's)"


@hookimpl
def harness_collection_finish(session, items):
    n_base, n_ref = sum(1 for i in items if i.baseline), sum(1 for i in items if i.reference is not None)
    counts = f"{len(items) - n_base - n_ref} candidate(s)" + (
        f", {n_base} baseline(s)" if n_ref else f" and {n_base} baseline(s)"
    )
    counts += f" and {n_ref} reference model(s)" if n_ref else ""
    _out(f"collected {counts} from {len(session.suites)} suite(s)")
    _out()


@hookimpl
def harness_data_ready(suite, data):
    for line in data_lines(suite, data):
        _out(line)


def data_lines(suite, data) -> list[str]:
    """The data of a suite in a few lines: split sizes, how the split was made, what cleaning found."""
    from harness.data.cleaning import summary_lines

    st = data.stats()
    out = [
        f"{suite.name}: data: {st['train_queries']} train / {st['dev_queries']} dev / {st['test_queries']} "
        "test "
        f"queries, {st['corpus']} documents"
        + (f", {st['train_negatives']} given negatives" if st.get("train_negatives") else "")
    ]
    if data.split_info.get("method"):
        share = data.split_info.get("test_share")
        out.append(
            f"    split: {data.split_info['method']}"
            + (f" ({share:.0%} of the queries in test)" if share else "")
        )
    out += [f"    cleaning: {line}" for line in summary_lines(data.cleaning)]
    return out


@hookimpl
def harness_candidate_start(item):
    _started[item.nodeid] = time.time()
    _primary[item.suite.name] = item.suite.evaluation.primary_metric
    _out(f"{item.nodeid} ... {'evaluating the untuned model' if item.untuned else 'training'}")


@hookimpl
def harness_candidate_progress(item, stage, info):
    line = progress_line(stage, info)
    if line is not None:
        _out(line)


@hookimpl
def harness_candidate_report(item, result):
    worker = result.get("worker")
    if worker:
        seconds = sum(v for k, v in result.get("timings", {}).items() if k != "docs_per_s")
    else:
        seconds = time.time() - _started.get(item.nodeid, time.time())
    metric = _primary.get(item.suite.name, "ndcg@10")
    key = f"{item.suite.name}::{item.model.name}"
    if item.baseline and metric in result["metrics"]:
        _baseline[key] = result["metrics"]
    base = None if item.baseline else _baseline.get(key)
    for line in result_lines(item.nodeid, item.baseline, result, metric, base, duration(seconds)):
        _out(line)


def fusion_setting(f: dict) -> str:
    """``rrf k=20`` or ``weighted dense=0.7``: a hybrid's fusion (harness/evaluate/fusion.py)."""
    if f.get("method") == "weighted":
        return f"weighted dense={f.get('weight')}"
    return f"rrf k={f.get('rrf_k', 60)}"


def result_lines(
    nodeid: str, baseline: bool, result: dict, metric: str, base: dict | None, took: str
) -> list[str]:
    """The lines of a finished baseline or candidate: its value of ``metric`` (and the gain over
    ``base``, its baseline's metrics), its status, the paired comparisons, out-of-domain and hybrid
    values, seeds, the gates and what went wrong."""
    value = result["metrics"].get(metric)
    text = f"{metric}={value:.4f}" if value is not None else ""
    if value is not None and base is not None and metric in base:
        text += f" ({value - base[metric]:+.4f} vs baseline)"
    status = "BASELINE" if baseline and result["status"] == Status.PASSED else str(result["status"]).upper()
    out = [f"{nodeid} {text} {status} [{took}]"]
    hybrids = result.get("hybrid") or {}
    for against, stats in result.get("comparison", {}).items():  # the baseline first, then the references
        comp = stats.get(metric)
        if comp:
            label = f"{against} of the untuned baseline" if against in hybrids else against
            out.append(
                f"    vs {label}: {comp['gain']:+.4f} [{comp['ci_low']:+.4f}, {comp['ci_high']:+.4f}] "
                f"p={comp['p_value']:.4f} ({comp['verdict']}; {comp['improved']} queries better, "
                f"{comp['worsened']} worse)"
            )
    for name, ood in (result.get("out_of_domain") or {}).items():
        if metric in ood["metrics"]:
            before = (base or {}).get(f"{name}/{metric}")
            vs = f" ({ood['metrics'][metric] - before:+.4f} vs baseline)" if before is not None else ""
            out.append(f"    out of domain {name}: {metric}={ood['metrics'][metric]:.4f}{vs}")
    for name, hybrid in hybrids.items():
        if metric in hybrid["metrics"]:
            out.append(
                f"    {name} (with {hybrid['of']}, fusion {fusion_setting(hybrid.get('fusion') or hybrid)}): "
                f"{metric}={hybrid['metrics'][metric]:.4f}"
            )
    if result.get("fusion"):
        f = result["fusion"]
        out.append(
            f"    fusion {fusion_setting(f)} ({f['chosen_by']}: {f['dev'][metric]:.4f}; this model alone "
            f"{f['dense_dev'][metric]:.4f}; {len(f['tried'])} settings tried)"
            if f.get("tried") and metric in f.get("dev", {})
            else f"    fusion {fusion_setting(f)} ({f['chosen_by']})"
        )
    if result.get("plain_st"):
        p = result["plain_st"]
        out.append(
            f"    plain sentence-transformers fp32 (its base, {p['texts']} test documents): "
            f"{p['docs_per_s']} docs/s"
        )
    if result.get("speed"):
        s = result["speed"]
        out.append(
            f"    speed: {s['docs_per_s']} docs/s, {s['x_plain_st']}x plain sentence-transformers fp32 "
            f"({s['plain_st_docs_per_s']} docs/s)"
        )
    out += _seed_lines(result.get("seeds"), metric)
    curve = (result.get("training") or {}).get("learning_curve")
    if curve:
        out.append(f"    learning curve: {curve['verdict']}")
    worker = result.get("worker")
    if worker:
        out.append(
            f"    ran on Ray worker {worker['host']} pid {worker['pid']}; artifacts via the "
            f"{worker['artifacts']}"
        )
    out += [f"    {'ok  ' if g['passed'] else 'FAIL'} {describe(g)}" for g in result["gates"]]
    out += [f"    warning: {guard}" for guard in result.get("guards", [])]
    out += diagnosis_lines(result.get("diagnosis"))
    if result.get("error"):
        out.append(f"    error: {result['error']}")
    return out


def diagnosis_lines(diagnosis: dict | None, shown: int = 3) -> list[str]:
    """The diagnosis: why it did not gain, and the first ``shown`` things to try with their reasons."""
    if not diagnosis:
        return []
    out = [f"    diagnosis: {diagnosis['because']}"]
    for i, s in enumerate(diagnosis["suggestions"][:shown], 1):
        setting = setting_text(s["setting"])
        out.append(f"      {i}. try {s['try']}{f' ({setting})' if setting else ''}: {s['why']}")
    return out


def setting_text(setting: dict) -> str:
    """A suggestion's settings as the ``--set`` options that try it (``harness run SUITE --set ...``),
    or as ``key = value`` where a key lies in an array of tables (``losses``, ``models``), which only
    the file sets."""
    import json
    import shlex

    if any(k.split(".")[0] in ("losses", "models", "references", "thresholds") for k in setting):
        return ", ".join(f"{k} = {v}" for k, v in setting.items())
    return " ".join(
        f"--set {shlex.quote(f'{k}={v if isinstance(v, str) else json.dumps(v)}')}"
        for k, v in setting.items()
    )


def _seed_lines(seeds: dict | None, metric: str) -> list[str]:
    if not seeds or metric not in seeds["mean"]:
        return []
    return [
        f"    {len(seeds['runs'])} seeds: {metric} mean {seeds['mean'][metric]:.4f} "
        f"± {seeds['std'][metric]:.4f} (worst {seeds['worst'][metric]:.4f}, best "
        f"{seeds['best'][metric]:.4f}); "
        f"ships seed {seeds['shipped']} ({seeds['by']})"
    ]


@hookimpl
def harness_reference_report(suite, reference):
    metric = suite.evaluation.primary_metric
    if reference.get("error"):
        _out(f"{suite.name}::{reference['name']} reference ERROR: {reference['error']}")
        return
    settings = " ".join(f"{k}={v}" for k, v in reference["settings"].items() if v not in (None, ""))
    speed = (
        f", {reference['metrics']['docs_per_s']} docs/s, {reference['metrics']['model_mb']} MB"
        if "docs_per_s" in reference["metrics"]
        else ""
    )
    value = reference["metrics"].get(metric, float("nan"))
    _out(
        f"{suite.name}::{reference['name']} {metric}={value:.4f} "
        f"REFERENCE ({reference['type']}: {settings}{speed}) [{duration(reference['seconds'])}]"
    )


@hookimpl
def harness_warning(message, item):
    _out(f"warning: {message}")


@hookimpl
def harness_sessionfinish(session, exit_code, summary):
    _out()
    for run in summary["runs"]:
        _out(f"results: {run['dir']}/results.json, report: {run['dir']}/report.html")
    parts = [f"{summary['passed']} passed", f"{summary['failed']} failed"]
    if summary["error"]:
        parts.append(f"{summary['error']} error")
    if summary.get("interrupted"):
        parts.append(f"{summary['interrupted']} interrupted")
    errored = summary.get("baseline_errors")
    parts.append(f"{summary['baselines']} baseline(s)" + (f" ({errored} errored)" if errored else ""))
    _out(_rule(f"{', '.join(parts)} in {duration(summary['seconds'])} (exit {int(exit_code)})"))
