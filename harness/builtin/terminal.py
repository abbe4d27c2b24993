"""The terminal reporter, pytest-style: a header, one line per baseline/candidate, a summary line."""

from __future__ import annotations

import sys
import time

from harness import hookimpl
from harness.gate.gates import describe

_started: dict[str, float] = {}
_primary: dict[str, str] = {}
_baseline: dict[str, dict] = {}


def _out(line: str = "") -> None:
    print(line, file=sys.stdout, flush=True)


def _rule(text: str) -> str:
    pad = max(0, 78 - len(text) - 2) // 2
    return f"{'=' * pad} {text} {'=' * pad}"


def _duration(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


@hookimpl
def harness_sessionstart(session):
    from harness import __version__

    _out(_rule("harness session starts"))
    profiles = sorted({s.profile for s in session.suites if s.profile})
    _out(f"harness {__version__} · device {session.device}"
         + (f" · profile {', '.join(profiles)}" if profiles else "") + f" · output {session.out_dir}")
    from harness.core.machine import cpu_description

    cpu = cpu_description()
    _out(f"cpu {cpu['model']} · {cpu['cores']} cores · {', '.join(cpu['flags']) or 'no AVX2'} (speeds are this machine's)")
    if session.executor.kind != "local":
        _out(f"executor {session.executor.kind} ({session.executor.describe().get('cluster', '')})")


@hookimpl
def harness_collection_finish(session, items):
    n_base, n_ref = sum(1 for i in items if i.baseline), sum(1 for i in items if i.reference is not None)
    counts = f"{len(items) - n_base - n_ref} candidate(s)" + (f", {n_base} baseline(s)" if n_ref else
                                                            f" and {n_base} baseline(s)")
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
    out = [f"{suite.name}: data: {st['train_queries']} train / {st['dev_queries']} dev / {st['test_queries']} test "
           f"queries, {st['corpus']} documents"
           + (f", {st['train_negatives']} given negatives" if st.get("train_negatives") else "")]
    if data.split_info.get("method"):
        share = data.split_info.get("test_share")
        out.append(f"    split: {data.split_info['method']}" + (f" ({share:.0%} of the queries in test)" if share else ""))
    out += [f"    cleaning: {line}" for line in summary_lines(data.cleaning)]
    return out


@hookimpl
def harness_candidate_start(item):
    _started[item.nodeid] = time.time()
    _primary[item.suite.name] = item.suite.evaluation.primary_metric
    _out(f"{item.nodeid} ... {'evaluating the untuned model' if item.untuned else 'training'}")


@hookimpl
def harness_candidate_progress(item, stage, info):
    if stage == "epoch":
        extra = " ".join(f"{k}={v:.4f}" for k, v in info.items() if k.startswith("dev_") and v is not None)
        loss = f" loss={info['loss']:.4f}" if info.get("loss") is not None else ""
        _out(f"    epoch {info['epoch']:g}:{loss} {extra}".rstrip())
    elif stage == "resumed":
        _out(f"    finished in {info['run']} with the same data and settings: re-used (--resume)")
    elif stage == "trained" and info.get("adopted"):
        _out("    the chosen setting's grid training is the first seed's: re-used")
    elif stage == "mined":
        fn = info["likely_false_negatives"]
        pos, neg = info.get("positive_score") or {}, info.get("negative_score") or {}
        _out(f"    mined {info['negatives']} hard negatives for {info['pairs_with_negatives']} of {info['pairs']} pairs "
             f"with {info['model']} from {info['corpus']} documents"
             + (f" in {_duration(info['seconds'])}" if info.get("seconds") is not None else "")
             + (f": median score positive {pos['median']:.3f}, negative {neg['median']:.3f}" if pos and neg else "")
             + f"; likely false negatives {fn['count']} ({fn['share']:.1%})"
             + (f"; {info['pairs_random']} pairs with random negatives instead" if info.get("pairs_random") else ""))
    elif stage == "student":
        _out(f"    student: layers {info['layers']} of the base's {info['of']}")
    elif stage == "distilled":
        _out(f"    distilled from {info['from']} on {info['texts']} texts, "
             f"{info['epochs']} epoch(s): mse {info['loss']:.6f} [{_duration(info['seconds'])}]")
    elif stage == "trial":
        _out(f"    grid {info['index']}/{info['of']}: {_setting(info['setting'])}")
    elif stage == "chosen":
        _out(f"    grid: chose {_setting(info['setting'])} (best dev score {info['dev_score']:.4f} of {info['of']} settings)")
    elif stage == "seed":
        _out(f"    seed {info['seed']}: dev {info['dev_score']:.4f}, "
             + ", ".join(f"test {k} {v:.4f}" for k, v in info.items() if k not in ("seed", "dev_score") and v is not None))
    elif stage == "refit":
        _out(f"    refit: training once more on train + dev ({info['pairs']} pairs) for the {info['epochs']} epoch(s) "
             "dev chose; that model ships")
    elif stage == "curve":
        dev = f"{info['dev_score']:.4f}" if info.get("dev_score") is not None else "n/a"
        _out(f"    learning curve: {info['fraction']:.0%} of the pairs ({info['pairs']}): dev score {dev}")
    elif stage == "trained" and info.get("resumed"):
        _out(f"    trained model re-used (--resume): {info['pairs']} pairs; kept: {info['kept']}")
    elif stage == "trained":
        _out(f"    trained on {info['pairs']} pairs in {_duration(info['seconds'])}; kept: {info['kept']}")
    elif stage == "exported":
        _out(f"    ONNX {info.get('variant', 'fp32')}: torch-vs-ONNX cosine >= {info['min_cosine']:.5f}, "
             f"encoding on {info['provider']}")
    elif stage == "evaluated" and info.get("resumed"):
        _out(f"    ONNX {info.get('variant', 'fp32')}: test-split evaluation re-used (--resume)")
    elif stage == "evaluated" and info.get("cached_from"):
        _out(f"    test-split numbers of this unchanged baseline reused from {info['cached_from']} (--no-cache to redo)")
    elif stage == "evaluated":
        _out(f"    ONNX {info.get('variant', 'fp32')}: evaluated the test split in {_duration(info['seconds'])} "
             f"({info['docs_per_s']} docs/s)")


def _setting(setting: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items())


@hookimpl
def harness_candidate_report(item, result):
    worker = result.get("worker")
    took = _duration(sum(v for k, v in result.get("timings", {}).items() if k != "docs_per_s") if worker
                     else time.time() - _started.get(item.nodeid, time.time()))
    metric = _primary.get(item.suite.name, "ndcg@10")
    value = result["metrics"].get(metric)
    text = f"{metric}={value:.4f}" if value is not None else ""
    key = f"{item.suite.name}::{item.model.name}"
    if item.baseline and value is not None:
        _baseline[key] = result["metrics"]
    elif value is not None and key in _baseline:
        text += f" ({value - _baseline[key][metric]:+.4f} vs baseline)"
    status = "BASELINE" if item.baseline and result["status"] == "passed" else result["status"].upper()
    _out(f"{item.nodeid} {text} {status} [{took}]")
    for against, stats in result.get("comparison", {}).items():  # the baseline first, then the references
        comp = stats.get(metric)
        if comp:
            label = f"{against} of the untuned baseline" if against in (result.get("hybrid") or {}) else against
            _out(f"    vs {label}: {comp['gain']:+.4f} [{comp['ci_low']:+.4f}, {comp['ci_high']:+.4f}] "
                 f"p={comp['p_value']:.4f} ({comp['verdict']}; {comp['improved']} queries better, {comp['worsened']} worse)")
    for name, ood in (result.get("out_of_domain") or {}).items():
        if metric in ood["metrics"]:
            base = _baseline.get(key, {}).get(f"{name}/{metric}")
            vs = f" ({ood['metrics'][metric] - base:+.4f} vs baseline)" if base is not None and not item.baseline else ""
            _out(f"    out of domain {name}: {metric}={ood['metrics'][metric]:.4f}{vs}")
    for name, hybrid in (result.get("hybrid") or {}).items():
        if metric in hybrid["metrics"]:
            _out(f"    {name} ({hybrid['method']} with {hybrid['of']}): {metric}={hybrid['metrics'][metric]:.4f}")
    seeds = result.get("seeds")
    if seeds and metric in seeds["mean"]:
        _out(f"    {len(seeds['runs'])} seeds: {metric} mean {seeds['mean'][metric]:.4f} ± {seeds['std'][metric]:.4f} "
             f"(worst {seeds['worst'][metric]:.4f}, best {seeds['best'][metric]:.4f}); ships seed {seeds['shipped']} "
             f"({seeds['by']})")
    curve = (result.get("training") or {}).get("learning_curve")
    if curve:
        _out(f"    learning curve: {curve['verdict']}")
    if worker:
        _out(f"    ran on Ray worker {worker['host']} pid {worker['pid']}; artifacts via the {worker['artifacts']}")
    for g in result["gates"]:
        _out(f"    {'ok  ' if g['passed'] else 'FAIL'} {describe(g)}")
    for guard in result.get("guards", []):
        _out(f"    warning: {guard}")
    if result.get("error"):
        _out(f"    error: {result['error']}")


@hookimpl
def harness_reference_report(suite, reference):
    metric = suite.evaluation.primary_metric
    if reference.get("error"):
        _out(f"{suite.name}::{reference['name']} reference ERROR: {reference['error']}")
        return
    settings = " ".join(f"{k}={v}" for k, v in reference["settings"].items() if v not in (None, ""))
    speed = (f", {reference['metrics']['docs_per_s']} docs/s, {reference['metrics']['model_mb']} MB"
             if "docs_per_s" in reference["metrics"] else "")
    _out(f"{suite.name}::{reference['name']} {metric}={reference['metrics'].get(metric, float('nan')):.4f} "
         f"REFERENCE ({reference['type']}: {settings}{speed}) [{_duration(reference['seconds'])}]")


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
    _out(_rule(f"{', '.join(parts)} in {_duration(summary['seconds'])} (exit {int(exit_code)})"))
