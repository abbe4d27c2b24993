"""A run fitted to its data and its machine before anything trains: ``max_seq_length = "auto"``
resolved with the models' tokenizers, and every training's memory plan probed
(:mod:`harness.train.memory`), so that a setting nothing fits is a usage error, not a killed run."""

from __future__ import annotations

from pathlib import Path

from harness.core.suiterun import SuiteRun
from harness.data.prepare import Prepared
from harness.errors import Problem
from harness.plugins import Plugins
from harness.suite.schema import Suite


def auto_length(run: SuiteRun, say) -> None:
    """Resolve ``max_seq_length = "auto"`` for ``run`` (:func:`resolve_auto_length`) with its trained
    models' tokenizers (every model's when none trains); the run's suite trains and evaluates with the
    number, and results.json says how it was found."""
    if run.data is None:
        return
    trained = {
        n: m.path
        for n, m in run.models.items()
        if any(i.model.name == n and not i.untuned for i in run.items)
    }
    models = trained or {n: m.path for n, m in run.models.items()}
    run.suite, run.max_seq_length_auto = resolve_auto_length(run.suite, run.data, models, say)


def resolve_auto_length(
    suite: Suite, data: Prepared, models: dict[str, Path], say
) -> tuple[Suite, dict | None]:
    """``max_seq_length = "auto"`` (in ``[training]``, ``[evaluation]`` or both): the tokens that keep
    ``training.max_seq_length_share`` of the corpus's documents whole with each model's tokenizer
    (``models``: name -> folder; the longest of them, at most the fewest tokens one of the models can
    read, :func:`harness.data.cleaning.model_token_limit`). The suite with that number where it said
    "auto", and how it was found (said with ``say``); the suite unchanged and None without "auto"."""
    import math
    from dataclasses import replace

    from harness.data.cleaning import model_token_limit, token_counter

    cfg, ev = suite.training, suite.evaluation
    where = [
        t for t, v in (("training", cfg.max_seq_length), ("evaluation", ev.max_seq_length)) if v == "auto"
    ]
    if not where:
        return suite, None
    texts = data.corpus["text"].to_list()
    share, lengths, limits = cfg.max_seq_length_share, {}, []
    for name, folder in models.items():
        count = token_counter(folder)
        if count is not None and texts:
            lengths[name] = sorted(count(texts))
            limits += [n for n in [model_token_limit(folder)] if n]
    if not lengths:
        length = None
        record = {"share": share, "max_seq_length": None, "covers": {}, "note": "no tokenizer to count with"}
        say(f'{suite.name}: max_seq_length = "auto": no tokenizer to count with, the model\'s own is used')
    else:
        need = max(ls[max(0, math.ceil(share * len(ls)) - 1)] for ls in lengths.values())
        length = min([need, *limits])
        covers = {name: round(sum(1 for n in ls if n <= length) / len(ls), 4) for name, ls in lengths.items()}
        note = f"{length} tokens" + (
            f" (the most the model reads; {need} would keep the share whole)" if length < need else ""
        )
        record = {"share": share, "max_seq_length": length, "needed": need, "covers": covers, "note": note}
        kept = ", ".join(f"{v:.0%} of the documents whole ({k})" for k, v in covers.items())
        say(
            f'{suite.name}: max_seq_length = "auto" (share {share:g}): {note} for '
            f"{' and '.join(where)}, keeping {kept}"
        )
    record["for"] = where
    if "training" in where:
        suite = replace(suite, training=replace(cfg, max_seq_length=length))
    if "evaluation" in where:
        suite = replace(suite, evaluation=replace(ev, max_seq_length=length))
    return suite, record


def memory_problems(run: SuiteRun, plugins: Plugins, device: str) -> list[Problem]:
    """Trainings that fit no memory plan (:mod:`harness.train.memory`), found before anything trains:
    each candidate's setting is probed here (its plan is re-used when it trains). A student, smaller
    than its base, is probed where it trains."""

    from harness.train.candidate import loss_options
    from harness.train.memory import MemoryError_, fitted

    if run.data is None:
        return []
    suite, out, seen = run.suite, [], set()
    cfg = costliest(suite)
    negatives = suite.search and suite.search.num_negatives
    for item in run.items:
        if (
            item.untuned
            or item.reference is not None
            or item.model.student
            or item.model.static  # its token table is distilled later, and its training probed then
            or item.model.name not in run.models
        ):
            continue
        spec = plugins.registry.losses[item.loss.type]
        options = loss_options(plugins, item, spec)
        losses = [x for x in suite.losses if x.name in item.searched] or [item.loss]  # a search's choices
        mined = max(x.hard_negatives.num_negatives if x.hard_negatives else 0 for x in losses)
        if negatives:
            mined = max(negatives) if isinstance(negatives, list) else negatives["high"]
        columns = probe_columns(
            run.data, spec, options, mined, item.model.query_prompt, item.model.document_prompt
        )
        try:
            fitted(
                run.models[item.model.name].path,
                spec,
                options,
                columns,
                cfg,
                device,
                len(run.data.dev) > 0,
            )
        except MemoryError_ as e:
            if str(e) not in seen:
                seen.add(str(e))
                out.append(Problem(str(suite.path), "training.max_memory", f"{item.name}: {e}"))
        except Exception:  # noqa: BLE001 - a loss that fails its probe fails its training: that candidate's error
            continue
    return out


def costliest(suite):
    """The suite's ``[training]`` at the largest batch_size and max_seq_length any grid setting or
    search trial may use (what the check before the run probes)."""
    from dataclasses import replace

    cfg, out = suite.training, {}
    for d in ("batch_size", "max_seq_length"):
        values = list(cfg.grid.get(d) or [])
        spec = None if suite.search is None else getattr(suite.search, d)
        if spec is not None:
            values.append(max(spec) if isinstance(spec, list) else spec["high"])
        if values:
            out[d] = max(values)
    return replace(cfg, **out)


def probe_columns(data, spec, options: dict, mined: int, query_prompt: str = "", document_prompt: str = ""):
    """Columns shaped as the training's will be, before mining: the training pairs, with the positives
    standing in for the ``mined`` negative columns (what a negative costs is what a document costs)."""
    from harness.data.trainset import has_negatives

    anchors, positives = data.train_pairs()
    anchors = [query_prompt + t for t in anchors]
    positives = [document_prompt + t for t in positives]
    needs = spec.columns_for(options)
    if "score" in needs:
        return {"sentence1": anchors, "sentence2": positives, "score": [1.0] * len(anchors)}
    cols = {"anchor": anchors, "positive": positives}
    if "negative" in needs or (spec.negatives_for(options) and has_negatives(data)):
        cols["negative"] = positives
    if spec.negatives_for(options) and "negative" not in needs:
        for i in range(1, mined + 1):
            cols[f"negative_{i}"] = positives
    return cols
