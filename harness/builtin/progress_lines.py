"""The terminal's line for each progress stage (:class:`harness.core.names.Stage`): one function per
stage, each given the stage's ``info`` (documented at ``harness_candidate_progress``) and returning
the line, or ``None`` to print nothing."""

from __future__ import annotations

from typing import Callable

from harness.core.names import Stage, VariantName


def duration(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


def setting(values: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _epoch(info: dict) -> str:
    extra = " ".join(f"{k}={v:.4f}" for k, v in info.items() if k.startswith("dev_") and v is not None)
    loss = f" loss={info['loss']:.4f}" if info.get("loss") is not None else ""
    return f"    epoch {info['epoch']:g}:{loss} {extra}".rstrip()


def _resumed(info: dict) -> str:
    return f"    finished in {info['run']} with the same data and settings: re-used (--resume)"


def _mined(info: dict) -> str:
    fn = info["likely_false_negatives"]
    pos, neg = info.get("positive_score") or {}, info.get("negative_score") or {}
    line = (
        f"    mined {info['negatives']} hard negatives for {info['pairs_with_negatives']} of {info['pairs']} "
        f"pairs with {info['model']} from {info['corpus']} documents"
    )
    if info.get("seconds") is not None:
        line += f" in {duration(info['seconds'])}"
    if pos and neg:
        line += f": median score positive {pos['median']:.3f}, negative {neg['median']:.3f}"
    line += f"; likely false negatives {fn['count']} ({fn['share']:.1%})"
    if info.get("pairs_random"):
        line += f"; {info['pairs_random']} pairs with random negatives instead"
    return line


def _student(info: dict) -> str:
    of = "the base's" if info.get("from", "base") == "base" else f"{info['from']}'s"
    line = f"    student: layers {info['layers']} of {of} {info['of']}"
    if info.get("chosen"):
        tried = ", ".join(f"{t['layers']} {t['dev']:.4f}" for t in info["chosen"]["tried"])
        line += f" ({info['chosen']['by']}: {tried})"
    return line


def _distilled(info: dict) -> str:
    if info.get("by") == "model2vec.distill":  # a static model's token table
        return (
            f"    static model distilled from {info['from']} with Model2Vec: {info['vocabulary']} tokens x "
            f"{info['dimensions']} [{duration(info['seconds'])}]"
        )
    return (
        f"    distilled from {info['from']} on {info['texts']} texts, "
        f"{info['epochs']} epoch(s): mse {info['loss']:.6f} [{duration(info['seconds'])}]"
    )


def _trial(info: dict) -> str:
    if info.get("search"):
        of = f"/{info['of']}" if info.get("of") else ""
        return f"    search trial {info['index']}{of}: {setting(info['setting'])}"
    return f"    grid {info['index']}/{info['of']}: {setting(info['setting'])}"


def _trial_end(info: dict) -> str:
    took = duration(info["seconds"])
    if info["state"] == "complete":
        peak = (info.get("memory") or {}).get("peak")
        peak = f", peak memory {peak}" if peak else ""
        return f"    search trial {info['index']}: dev score {info['dev_score']:.4f} [{took}{peak}]"
    return (
        f"    search trial {info['index']} {info['state']}: {info.get('note') or info.get('error')} [{took}]"
    )


def _chosen(info: dict) -> str:
    what = "trials" if info.get("search") else "settings"
    return (
        f"    {'search' if info.get('search') else 'grid'}: chose {setting(info['setting'])} "
        f"(best dev score {info['dev_score']:.4f} of {info['of']} {what})"
    )


def _seed(info: dict) -> str:
    tests = [f"test {k} {v:.4f}" for k, v in info.items() if k not in ("seed", "dev_score") and v is not None]
    return f"    seed {info['seed']}: dev {info['dev_score']:.4f}, " + ", ".join(tests)


def _refit(info: dict) -> str:
    return (
        f"    refit: training once more on train + dev ({info['pairs']} pairs) "
        f"for the {info['epochs']} epoch(s) dev chose; that model ships"
    )


def _curve(info: dict) -> str:
    dev = f"{info['dev_score']:.4f}" if info.get("dev_score") is not None else "n/a"
    return f"    learning curve: {info['fraction']:.0%} of the pairs ({info['pairs']}): dev score {dev}"


def _memory(info: dict) -> str:
    how = info["changed"] or "the suite's setting fits"
    return (
        f"    memory: {how}; the probe measured {info['predicted_peak']} of {info['limit']} "
        f"({info['limit_from']}) in {duration(info['probe_seconds'])}"
    )


def _trained(info: dict) -> str:
    if info.get("adopted"):
        return "    the chosen setting's trial is the first seed's training: re-used"
    if info.get("resumed"):
        return f"    trained model re-used (--resume): {info['pairs']} pairs; kept: {info['kept']}"
    peak = (info.get("memory") or {}).get("peak")
    peak = f"; peak memory {peak}" if peak else ""
    return f"    trained on {info['pairs']} pairs in {duration(info['seconds'])}{peak}; kept: {info['kept']}"


def _engine(variant: str) -> str:
    return "static model" if variant == "static" else f"ONNX {variant}"


def _exported(info: dict) -> str:
    if info.get("variant") == "static":
        return f"    static model in numpy: cosine to the torch model >= {info['min_cosine']:.5f}"
    return (
        f"    ONNX {info.get('variant', VariantName.FP32)}: torch-vs-ONNX cosine >= "
        f"{info['min_cosine']:.5f}, "
        f"encoding on {info['provider']}"
    )


def _evaluated(info: dict) -> str:
    variant = info.get("variant", VariantName.FP32)
    if info.get("resumed"):
        return f"    {_engine(variant)}: test-split evaluation re-used (--resume)"
    if info.get("cached_from"):
        return (
            f"    test-split numbers of this unchanged baseline reused from {info['cached_from']} "
            "(--no-cache to redo)"
        )
    return (
        f"    {_engine(variant)}: evaluated the test split in {duration(info['seconds'])} "
        f"({info['docs_per_s']} docs/s)"
    )


LINES: dict[Stage, Callable[[dict], str | None]] = {
    Stage.EPOCH: _epoch,
    Stage.RESUMED: _resumed,
    Stage.MINED: _mined,
    Stage.STUDENT: _student,
    Stage.DISTILLED: _distilled,
    Stage.TRIAL: _trial,
    Stage.TRIAL_END: _trial_end,
    Stage.CHOSEN: _chosen,
    Stage.SEED: _seed,
    Stage.REFIT: _refit,
    Stage.CURVE: _curve,
    Stage.MEMORY: _memory,
    Stage.TRAINED: _trained,
    Stage.EXPORTED: _exported,
    Stage.EVALUATED: _evaluated,
}
assert set(LINES) == set(Stage), "every declared stage has its line"


def progress_line(stage: str, info: dict) -> str | None:
    """The line for ``stage`` (a :class:`Stage` or its string), or None for a stage this version
    does not know (a plugin's own)."""
    if stage not in Stage.values():
        return None
    return LINES[Stage(stage)](info)
