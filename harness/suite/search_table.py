"""``[search]``: a recipe search on the dev split within a budget (run by :mod:`harness.train.search`).
Each dimension is a list of choices or a range table ``{low, high, log, step}``."""

from __future__ import annotations

from dataclasses import dataclass

from harness.suite.keys import check_field, describe, key, positive
from harness.suite.training_tables import HardNegativesTable, TrainingTable

#: the dimensions that are [training] keys (a trial's value replaces the suite's)
TRAINING_DIMS = ("learning_rate", "epochs", "max_seq_length", "batch_size", "warmup_ratio", "weight_decay")
#: every dimension: the training keys, the mined negatives per pair, the batch sampler, the loss
DIMS = (*TRAINING_DIMS, "num_negatives", "batch_sampler", "loss")
INTEGER_DIMS = ("epochs", "max_seq_length", "batch_size", "num_negatives")
CHOICE_ONLY = ("batch_sampler", "loss")
SAMPLERS = ("batch_sampler", "no_duplicates")
RANGE_KEYS = ("low", "high", "log", "step")

DIM_HELP = "a list of choices, or a range {low = ..., high = ..., log = true, step = ...}"


@dataclass
class SearchTable:
    """``[search]``: Optuna proposes each trial's recipe, trained with the candidate's training code and
    scored on dev; the best dev score wins and only that recipe is evaluated on test."""

    trials: int | None = key(None, "budget: at most this many trials per candidate", positive)
    minutes: float | None = key(
        None, "budget: start no trial after this many minutes of a candidate's search", positive
    )
    sampler: str = key("tpe", "Optuna's sampler: tpe (TPESampler) or random", choices=("tpe", "random"))
    pruning: bool = key(
        True,
        "stop a trial whose dev score after an epoch is below the median of the earlier trials at that "
        "epoch (Optuna's MedianPruner, from the third trial on)",
    )
    seed: int | None = key(None, "the sampler's seed (default: training.seed)")
    learning_rate: list | dict | None = key(None, f"peak learning rate: {DIM_HELP}")
    epochs: list | dict | None = key(None, f"training epochs: {DIM_HELP}")
    max_seq_length: list | dict | None = key(None, f"training text length in tokens: {DIM_HELP}")
    batch_size: list | dict | None = key(None, f"pairs per batch: {DIM_HELP}")
    warmup_ratio: list | dict | None = key(None, f"warm-up share: {DIM_HELP}")
    weight_decay: list | dict | None = key(None, f"AdamW weight decay: {DIM_HELP}")
    num_negatives: list | dict | None = key(
        None,
        "mined hard negatives per pair (0: none), with the candidate's [losses.hard_negatives] "
        f"settings or their defaults: {DIM_HELP}",
    )
    batch_sampler: list[str] | None = key(
        None, "choices of the batch sampler: 'batch_sampler' (any) or 'no_duplicates' (no text twice)"
    )
    loss: list[str] | None = key(
        None,
        "choices of [[losses]] names: those losses become one candidate per model, <model>-search, whose "
        "trials choose among them",
    )

    def dims(self) -> dict[str, list | dict]:
        """The dimensions the search varies, in the order of the table's keys."""
        return {d: getattr(self, d) for d in DIMS if getattr(self, d) is not None}

    def problems(self):
        if self.trials is None and self.minutes is None:
            yield "", "expected a budget: trials = N and/or minutes = M"
        if not self.dims():
            yield "", f"expected at least one dimension to search: {', '.join(DIMS)}"
        for d, spec in self.dims().items():
            yield from (("." + d + sub, msg) for sub, msg in dim_problems(d, spec))


def dim_problems(d: str, spec):
    """What is wrong with dimension ``d``'s ``spec`` (a TOML sub-path and a message each)."""
    if isinstance(spec, list):
        if not spec:
            yield "", "expected a non-empty list of choices"
        if len(set(map(repr, spec))) != len(spec):
            yield "", f"expected each choice once, got {spec!r}"
        for i, v in enumerate(spec):
            msg = value_problem(d, v)
            if msg:
                yield f"[{i}]", msg
        return
    if d in CHOICE_ONLY:
        yield "", f"expected a list of choices, got {describe(spec)}"
        return
    if not isinstance(spec, dict):
        yield "", f"expected {DIM_HELP}, got {describe(spec)}"
        return
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        yield f".{unknown[0]}", f"unknown key; a range has {', '.join(RANGE_KEYS)}"
    for end in ("low", "high"):
        if end not in spec:
            yield f".{end}", "missing: a range needs low and high"
        else:
            msg = value_problem(d, spec[end])
            if msg:
                yield f".{end}", msg
    low, high = spec.get("low"), spec.get("high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and not low < high:
        yield "", f"expected low < high, got {low!r} and {high!r}"
    if "log" in spec and not isinstance(spec["log"], bool):
        yield ".log", f"expected true or false, got {describe(spec['log'])}"
    if spec.get("log") and isinstance(low, (int, float)) and low <= 0:
        yield ".low", "a log range needs low > 0"
    if "step" in spec:
        step = spec["step"]
        if not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0:
            yield ".step", f"expected a number > 0, got {describe(step)}"
        elif spec.get("log"):
            yield ".step", "give step or log, not both (Optuna takes one)"
        elif d in INTEGER_DIMS and not isinstance(step, int):
            yield ".step", f"expected an integer step for {d}, got {step!r}"


def value_problem(d: str, v) -> str | None:
    """The error text for ``v`` as one value of dimension ``d``, or None."""
    if d == "loss":
        return None if isinstance(v, str) else f"expected a [[losses]] name, got {describe(v)}"
    if d == "batch_sampler":
        return None if v in SAMPLERS else f"expected one of {', '.join(map(repr, SAMPLERS))}, got {v!r}"
    if d == "num_negatives":
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            return f"expected a number of negatives >= 0, got {describe(v)}"
        return None if v == 0 else check_field(HardNegativesTable, "num_negatives", v)
    if d == "max_seq_length" and v == "auto":
        return 'expected a number of tokens > 0 (a search tries given lengths, not "auto")'
    if d in INTEGER_DIMS and (not isinstance(v, int) or isinstance(v, bool)):
        return f"expected an integer, got {describe(v)}"
    return check_field(TrainingTable, d, v)
