"""A training fitted into memory before its first step, and held there.

A short probe runs real training steps (forward, backward, an AdamW step) on the longest texts of
each training column, cut at ``max_seq_length``, and measures the peak memory of each
(:class:`harness.core.memory.PeakMeter`). From steps of 1, 2 and up to 8 rows it knows what one more row
(or one more text in a mini-batch) costs, and chooses, without changing what is learned:

1. the suite's loss as it is, when the whole batch fits (a step of the whole batch, measured, says so);
2. else the loss's cached form (``MultipleNegativesRankingLoss`` -> ``CachedMultipleNegativesRankingLoss``,
   ``GISTEmbedLoss`` -> ``CachedGISTEmbedLoss``, ...): the same batch of in-batch negatives, embedded
   in mini-batches whose size the probe chooses and then checks with a real step;
3. else the same with gradient checkpointing;
4. else nothing trains: a usage error names the setting and what would fit.

Training then runs under a guard that stops it, with its reason, should the peak pass the limit.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from harness.core.losses import CACHED, UNCACHED
from harness.core.memory import (
    PeakMeter,
    default_limit,
    device_total,
    format_size,
    held,
    parse_size,
    release_freed,
    trim,
)
from harness.errors import ConfigError
from harness.train.probe import Prober

MARGIN = 0.9  #: plan to this share of the limit: what a step allocates varies a little from batch to batch
WRAPPER = "MatryoshkaLoss"  #: wraps another loss named by its ``loss`` option


class MemoryError_(ConfigError):  # noqa: N801 - a ConfigError (exit 4) about memory, not Python's MemoryError
    """Nothing fits the memory limit: nothing was trained."""


@dataclass
class MemoryPlan:
    limit: int  #: bytes
    limit_from: str  #: ``training.max_memory = "8GiB"``, or how the default was found
    loss: str  #: the loss that trains: the suite's, or its cached form
    mini_batch_size: int | None  #: of a cached loss
    gradient_checkpointing: bool
    predicted: int  #: the peak the probe measured (or predicted) for the chosen setting
    held_before: int  #: what the process held when the probe began
    seconds: float
    probes: list[dict] = field(default_factory=list)  #: rows, mini_batch_size, checkpointing, peak
    changed: str = ""  #: what was changed to fit, in words ("" when nothing was)
    eval_batch_size: int | None = None  #: of the dev evaluation during training, measured to fit too
    peak: int | None = None  #: measured over the whole training, once it ran

    def as_dict(self) -> dict:
        return {
            "limit_bytes": self.limit,
            "limit": format_size(self.limit),
            "limit_from": self.limit_from,
            "loss": self.loss,
            "mini_batch_size": self.mini_batch_size,
            "gradient_checkpointing": self.gradient_checkpointing,
            "predicted_peak_bytes": self.predicted,
            "predicted_peak": format_size(self.predicted),
            "peak_bytes": self.peak,
            "peak": None if self.peak is None else format_size(self.peak),
            "probe_seconds": round(self.seconds, 1),
            "probes": self.probes,
            "changed": self.changed,
            "eval_batch_size": self.eval_batch_size,
        }


def limit_of(max_memory: str | None, device: str) -> tuple[int, str]:
    if max_memory is not None:
        return parse_size(max_memory), f'training.max_memory = "{max_memory}"'
    limit, how = default_limit(device)
    return limit, f"training.max_memory default: {how}"


def inner_name(spec_name: str, options: dict) -> str:
    """The loss whose memory matters: a wrapper's inner loss, else the loss itself."""
    if spec_name == WRAPPER:
        return options.get("loss", "MultipleNegativesRankingLoss")
    return spec_name


def with_loss(spec_name: str, options: dict, name: str, mini_batch_size: int | None) -> tuple[str, dict]:
    """(loss type, options) with the memory-bearing loss replaced by ``name`` at ``mini_batch_size``."""
    if spec_name == WRAPPER:
        inner = dict(options.get("loss_options") or {})
        inner.pop("mini_batch_size", None)
        if mini_batch_size is not None:
            inner["mini_batch_size"] = mini_batch_size
        return spec_name, {**options, "loss": name, "loss_options": inner}
    out = {k: v for k, v in options.items() if k != "mini_batch_size"}
    if mini_batch_size is not None:
        out["mini_batch_size"] = mini_batch_size
    return name, out


def explicit_mini_batch(spec_name: str, options: dict) -> int | None:
    if spec_name == WRAPPER:
        return (options.get("loss_options") or {}).get("mini_batch_size")
    return options.get("mini_batch_size")


WIDE_ROWS = 8  #: the second point of the probe's line, where the data and the memory allow


def line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed, per row) of the line through the first and the last ``(rows, peak)`` measured. The
    points farthest apart: a step of 1 or 2 rows allocates little more than what the allocator already
    keeps free, so the line through those two alone under-predicted a batch of 32 by 40%."""
    (r0, p0), (r1, p1) = points[0], points[-1]
    per_row = max(0.0, (p1 - p0) / (r1 - r0)) if r1 > r0 else 0.0
    return p0 - per_row * r0, per_row


def measure_rows(
    prober, loss_name: str, batch_size: int, budget: int, confirm: bool
) -> list[tuple[int, float]]:
    """Measured ``(rows, peak)`` steps of ``loss_name``: 1 and 2 rows, which say what a row costs
    roughly; then up to :data:`WIDE_ROWS` rows, as many as half the room left under ``budget`` holds by
    that estimate; then, when the line says the whole batch fits (and ``confirm``), the whole batch
    itself, so what is planned with is a measured step, not an extrapolation."""
    points = [(1, prober.step(loss_name, 1))]
    if batch_size >= 2:
        points.append((2, prober.step(loss_name, 2)))
    fixed, per_row = line(points)
    room = (budget - points[-1][1]) / 2
    wide = min(batch_size, WIDE_ROWS, points[-1][0] + (int(room / per_row) if per_row > 0 else WIDE_ROWS))
    if wide > points[-1][0] and points[-1][1] < budget:
        points.append((wide, prober.step(loss_name, wide)))
        fixed, per_row = line(points)
    if confirm and batch_size > points[-1][0] and fixed + per_row * batch_size <= budget:
        points.append((batch_size, prober.step(loss_name, batch_size)))
    return points


def plan(
    model_dir,
    spec_name: str,
    options: dict,
    columns: dict[str, list],
    batch_size: int,
    max_seq_length: int | None,
    device: str,
    max_memory: str | None,
    build_loss,
    eval_batch_size: int | None = None,
) -> MemoryPlan:
    """Choose how ``batch_size`` rows of ``columns`` train within the memory limit (see the module).

    ``build_loss(model, type, options)``: the loss module, as the trainer would build it.
    ``eval_batch_size``: of the dev evaluation between epochs, which must fit as well (halved until it
    does: how many texts are encoded at once changes no number)."""
    limit, limit_from = limit_of(max_memory, device)
    budget = int(limit * MARGIN)
    release_freed()
    before = held(device)
    start = time.perf_counter()
    name = inner_name(spec_name, options)
    uncached = UNCACHED.get(name, name)
    cached = CACHED.get(uncached)
    fixed_mini = explicit_mini_batch(spec_name, options)
    user_cached = name in UNCACHED

    def build(model, loss_name, mini):
        t, o = with_loss(spec_name, options, loss_name, mini)
        return build_loss(model, t, o)

    def done(loss_name, mini, ckpt, predicted, changed) -> MemoryPlan:
        evaluated = eval_batch_size
        while evaluated:
            peak = prober.encode(evaluated)
            if peak <= budget:
                predicted = max(predicted, peak)
                break
            smallest(peak, f"the dev evaluation in batches of {evaluated}")
            if evaluated == 1:
                refuse()
            evaluated //= 2
        if evaluated != eval_batch_size:
            note = f"the dev evaluation in batches of {evaluated} (not {eval_batch_size})"
            changed = f"{changed}; {note}" if changed else note
        return MemoryPlan(
            limit,
            limit_from,
            loss_name,
            mini,
            ckpt,
            int(predicted),
            before,
            time.perf_counter() - start,
            prober.probes,
            changed,
            evaluated,
        )

    def refuse():
        seq = f"max_seq_length {max_seq_length}" if max_seq_length else "the model's max_seq_length"
        if least["peak"] > device_total(device):  # it ran out of the device's memory itself
            measured, fits = f"ran out of the {device}'s memory ({format_size(device_total(device))})", []
        else:
            measured = f"measured {format_size(least['peak'])}"
            fits = [f"a limit of at least {format_size(int(least['peak'] / MARGIN) + 1)}"]
        if fixed_mini is not None:
            fits.append("no mini_batch_size in the loss's options (the probe then chooses)")
        if cached is None and 2 <= largest_batch < batch_size:
            fits.append(f"training.batch_size = {largest_batch} (measured to fit)")
        fits.append(
            f"a training.max_seq_length below {max_seq_length}"
            if max_seq_length
            else "a lower training.max_seq_length"
        )
        raise MemoryError_(
            f"{limit_from} ({format_size(limit)} on {device}) is too small to train at {seq}, batch_size "
            f"{batch_size}: the smallest step ({least['what']}) {measured}, "
            f"the process holding {format_size(before)} before it. What would fit: {'; '.join(fits)}. "
            "Nothing was trained"
        )

    text_columns = [k for k in columns if k != "score"]
    document_columns = max(1, len(text_columns) - 1)  # the anchor (a query) is the shortest, mostly
    prober = Prober(model_dir, max_seq_length, columns, device, build)
    least: dict = {}  #: the smallest step measured, for the refusal

    def smallest(peak: float, what: str) -> None:
        if not least or peak < least["peak"]:
            least.update(peak=peak, what=what)

    try:
        prober.warm_up(uncached)
        largest_batch = 0
        if held(device) > budget:  # the model alone is over: measure the smallest step only, and say so
            prober.enable_checkpointing()
            if cached is not None:
                smallest(prober.mini_batch(1), f"{cached} in mini-batches of 1 with gradient checkpointing")
            else:
                smallest(prober.step(uncached, 1), f"1 row of {uncached} with gradient checkpointing")
            refuse()
        for ckpt in (False, True):
            if ckpt:
                prober.enable_checkpointing()
            flag = " with gradient checkpointing" if ckpt else ""
            points = measure_rows(prober, uncached, batch_size, budget, confirm=not user_cached)
            fixed, per_row = line(points)
            whole = points[-1][1] if points[-1][0] == batch_size else fixed + per_row * batch_size
            if per_row > 0:
                largest_batch = max(largest_batch, int((budget - fixed) / per_row))
            smallest(points[0][1], f"1 row of {uncached}{flag}")
            if whole <= budget and not user_cached:
                changed = f"gradient checkpointing (the whole batch: {format_size(whole)})" if ckpt else ""
                return done(uncached, None, ckpt, whole, changed)
            if cached is None:
                continue
            if fixed_mini is not None:
                tries = [fixed_mini]
            else:
                per_text = per_row / document_columns
                guess = int((budget - fixed) / per_text) if per_text > 0 else batch_size
                guess = max(1, min(batch_size, guess))
                tries = sorted({guess, 1, *(max(1, int(guess * f)) for f in (0.7, 0.45, 0.25))}, reverse=True)
            for mini in tries:
                peak = prober.mini_batch(mini)
                if peak <= budget:
                    unchanged = user_cached and fixed_mini is not None and not ckpt
                    changed = (
                        ""
                        if unchanged
                        else f"{cached} in mini-batches of {mini}{flag} (uncached, the whole batch "
                        f"would need about {format_size(whole)})"
                    )
                    return done(cached, mini, ckpt, peak, changed)
                smallest(peak, f"{cached} in mini-batches of {mini}{flag}")
        refuse()
    finally:
        prober.close()


class Guard:
    """A trainer callback that stops training once the peak passes the limit (rather than leave it to
    the kernel, which kills the process and everything it has not written)."""

    def __init__(self, meter: PeakMeter, plan_: MemoryPlan):
        from transformers import TrainerCallback

        self.meter, self.plan = meter, plan_
        self.stopped_at: tuple[int, int] | None = None
        guard = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if not guard.meter.cuda:
                    trim()  # what the step freed is not kept resident under the dev evaluation
                peak = guard.meter.read()
                if peak > guard.plan.limit and guard.stopped_at is None:
                    guard.stopped_at = (state.global_step, peak)
                    control.should_training_stop = True

            on_evaluate = on_step_end

        self.callback = Callback()

    def message(self, max_steps: int) -> str | None:
        if self.stopped_at is None:
            return None
        step, peak = self.stopped_at
        return (
            f"training stopped at step {step} of {max_steps}: its peak memory {format_size(peak)} passed "
            f"{self.plan.limit_from} ({format_size(self.plan.limit)}); the probe had measured "
            f"{format_size(self.plan.predicted)}. Lower training.batch_size or training.max_seq_length, or "
            "give the loss a mini_batch_size"
        )


def replace_loss(spec, name: str):
    """``spec`` (a sentence-transformers loss of the catalogue) as the loss ``name`` of the same module;
    options the other class does not take are left out (an uncached loss has no
    ``mini_batch_num_tokens``)."""

    def factory(model, **options):
        import inspect

        import sentence_transformers.losses as L

        cls = getattr(L, name)
        accepted = inspect.signature(cls).parameters
        return cls(model, **{k: v for k, v in options.items() if k in accepted})

    return dataclasses.replace(spec, name=name, factory=factory)


def build_loss(spec, model, name: str, options: dict):
    """The loss module ``name`` (``spec``'s own, or its cached or uncached form) for ``model``."""
    return (spec if name == spec.name else replace_loss(spec, name)).build(model, options)


_PLANS: dict[tuple, MemoryPlan] = {}  #: this process's plans, by what they measured


def signature(
    model_dir, spec_name, options, columns, batch_size, max_seq_length, device, max_memory
) -> tuple:
    """What a plan measured: the model, loss, batch and the tokens of each column's longest text."""
    import json

    from harness.data.cleaning import token_counter

    count = token_counter(model_dir)
    lengths = []
    for name, values in columns.items():
        text = "" if name == "score" else max(values, key=len, default="")
        n = count([text])[0] if count else len(text)
        lengths.append((name, min(n, max_seq_length) if max_seq_length else n))
    opts = json.dumps(options, sort_keys=True, default=str)
    return (str(model_dir), spec_name, opts, tuple(lengths), batch_size, max_seq_length, device, max_memory)


def fitted(model_dir, spec, options, columns, cfg, device, has_dev: bool = True) -> MemoryPlan:
    """The plan for training ``spec`` on ``columns`` with ``cfg`` (a ``[training]`` table), re-using one
    this process measured for the same setting (the check before the run, :mod:`harness.run.fitting`)."""
    key = (
        *signature(
            model_dir, spec.name, options, columns, cfg.batch_size, cfg.max_seq_length, device, cfg.max_memory
        ),
        cfg.eval_batch_size if has_dev else None,
    )
    known = _PLANS.get(key)
    if known is not None:  # what the process holds more than then comes on top of what the probe saw
        release_freed()
        now = held(device)
        predicted = known.predicted + max(0, now - known.held_before)
        if predicted <= known.limit * MARGIN:
            return dataclasses.replace(known, probes=list(known.probes), predicted=predicted, peak=None)

    out = plan(
        model_dir,
        spec.name,
        options,
        columns,
        cfg.batch_size,
        cfg.max_seq_length,
        device,
        cfg.max_memory,
        lambda model, name, opts: build_loss(spec, model, name, opts),
        cfg.eval_batch_size if has_dev else None,
    )
    _PLANS[key] = out
    return out
