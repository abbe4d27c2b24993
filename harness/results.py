"""The typed results every phase returns, and that ``results.json`` holds.

Each phase returns its part of a candidate's result instead of filling in a shared dict: the
evaluation an :class:`Evaluated`, the training a :class:`Trained` (its shipped seed's
:class:`Evaluated` included), the gate a :class:`Judgement`; the run's pipeline
(:mod:`harness.run.pipeline`) starts a :class:`CandidateResult` with :func:`new_result` and merges
the parts in. They are TypedDicts, so a result is the JSON object ``results.json`` stores (the
report, ``--compare``, ``--resume`` and the history of earlier runs read old files as they are);
``harness/report/results.schema.json`` is its JSON Schema, which every results.json the tests write is
validated against. Keys may be added; none is renamed or removed.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from harness.core.names import Status


class Gate(TypedDict, total=False):
    """One threshold kind of one ``[[thresholds]]`` entry (or the shipped variant's drop from fp32)."""

    metric: str
    kind: Literal["min", "max", "min_gain", "min_gain_ci", "max_drop"]
    against: str | None  #: "baseline", "compare" or "fp32"; None for min/max
    threshold: float
    value: float | None  #: None: the metric or the reference was missing (the gate fails)
    passed: bool
    ci: list[float]  #: the gain's 95% paired-bootstrap interval, for gates against a reference
    p_value: float
    seeds: str  #: "mean" or "worst", with several seeds


class Comparison(TypedDict):
    """Paired statistics of one metric against one reference
    (:func:`harness.gate.stats.paired_comparison`)."""

    gain: float
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str
    queries: int
    improved: int
    worsened: int
    unchanged: int


class VariantRow(TypedDict, total=False):
    """One export variant of a candidate (fp32, O2, int8, ...), evaluated on the test split."""

    variant: str
    file: str
    provider: str
    metrics: dict[str, float]
    encoder: dict[str, Any]
    export_check: dict[str, Any]
    made_by: dict[str, Any]  #: ``steps`` (exporter, optimiser, quantiser) and ``versions`` of the libraries
    cached_from: str | None
    timings: dict[str, float]
    drop: float | None  #: the primary metric's drop from fp32 (not for fp32 itself)
    passed: bool  #: drop <= export.max_drop
    shipped: bool
    error: str  #: a variant that could not be built (only the shipped one's error fails the candidate)


class Evaluated(TypedDict, total=False):
    """What exporting and evaluating one model gives
    (:meth:`harness.evaluate.evaluation.Evaluation.export_and_evaluate`):
    the shipped variant's numbers, and every variant's row."""

    metrics: dict[str, float]
    encoder: dict[str, Any]
    export_check: dict[str, Any]
    variant: str
    variants: list[VariantRow]
    per_query: dict[str, dict[str, float]]
    rankings: dict[str, list[str]]
    dims: dict[str, dict[str, float]] | None
    hybrid: dict[str, dict[str, Any]]  #: per hybrid reference: this model's ranking fused with BM25's
    #: per [[evaluation.out_of_domain]] name: its metrics there (also in ``metrics`` as <name>/<metric>)
    out_of_domain: dict[str, dict[str, Any]]
    evaluation_cached_from: str | None
    timings: dict[str, float]


class TrainingRecord(TypedDict, total=False):
    """How the shipped model was trained (one training's summary plus the choices around it)."""

    seconds: float
    pairs: int
    steps: int
    pairs_per_s: float | None
    chosen_epoch: float | None
    chosen_by: str
    history: list[dict[str, Any]]
    dev_score: float | None
    seed: int
    setting: dict[str, Any]
    grid: dict[str, Any] | None
    search: dict[str, Any] | None  #: the recipe search of ``[search]`` (:mod:`harness.train.search`)
    learning_curve: dict[str, Any] | None
    refit: dict[str, Any]
    total_seconds: float
    trainings: int
    embedding_change: float | None
    columns: list[str]  #: the training columns (anchor, positive, negative ...)
    negatives: dict[str, int]  #: rows' negatives by origin: given (with the data), mined, random


class Trained(Evaluated, total=False):
    """What training a candidate gives (:meth:`harness.train.candidate.CandidateTrainer.train`): the
    shipped seed's evaluation, with the training, the mining and the seeds' spread."""

    training: TrainingRecord
    mining: dict[str, Any] | None
    model_dir: str
    seeds: dict[str, Any]
    layers: int | None  #: its transformer layers (a baseline's too)
    student: dict[str, Any]  #: a layer-reduced student: ``layers`` kept ``of`` the base's


class Judgement(TypedDict, total=False):
    """What judging a candidate against its references gives (:func:`harness.gate.verdict.judge`)."""

    status: Status
    comparison: dict[str, dict[str, Comparison]]
    compared_with: dict[str, Any]
    gates: list[Gate]
    guards: list[str]
    diagnosis: dict[str, Any] | None  #: why it did not gain, and what to try (:mod:`harness.gate.diagnosis`)
    per_query_view: dict[str, Any]


class CandidateResult(Trained, Judgement, total=False):
    """One baseline's or candidate's entry in ``results.json`` ``candidates``."""

    name: str
    nodeid: str
    base_model: str
    base_model_revision: str | None
    resolver: str | None
    baseline: bool
    loss: dict[str, Any] | None
    step_key: str
    error: str
    traceback: str
    worker: dict[str, Any]
    resumed_from: str
    fatal: bool  #: the run stopped after this item (the disk was full): the items after it did not run


class RunDocument(TypedDict, total=False):
    """``results.json``: one suite's run (:func:`harness.report.document.write_results`)."""

    suite: str
    suite_file: str
    suite_sha256: str
    description: str
    profile: str | None
    run_id: str
    exit_code: int | None  #: None while the run is going on
    device: str
    executor: dict[str, Any]
    started: str
    finished: str | None
    primary_metric: str
    data: dict[str, Any] | None
    training: dict[str, Any]
    export: dict[str, Any]
    data_seed: int
    environment: dict[str, Any]  #: library versions, and ``cpu``: vendor, model, cores, isa, flags
    candidates: list[CandidateResult]
    not_run: list[str]
    shipped: str | None
    compare: dict[str, Any] | None
    references: list[dict[str, Any]]  #: bm25 (once) and the hybrid of every baseline and candidate


def new_result(item, resolved) -> CandidateResult:
    """The skeleton of ``item``'s result (a :class:`harness.suite.collect.Item`, its base model
    ``resolved`` or None): an error until it has run and been judged."""
    return {
        "name": item.name,
        "nodeid": item.nodeid,
        "base_model": item.model.base,
        "base_model_revision": resolved.revision if resolved else None,
        "resolver": resolved.resolver if resolved else None,
        "baseline": item.baseline,
        # a student's baseline is the untuned full base: a transformer
        "kind": "transformer" if item.untuned and item.model.student else item.model.kind,
        "loss": None if item.loss is None else {"type": item.loss.type, **item.loss.options},
        "status": Status.ERROR,
        "metrics": {},
        "gates": [],
        "encoder": None,
        "timings": {},
    }
