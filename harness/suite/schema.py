"""The suite schema: each table of a suite file is a dataclass below, and each field's type,
default and help text is the documentation of that key (``harness check --keys`` prints it, and
``docs/suite-keys.md`` is generated from it). Unknown keys are errors with a "did you mean", since a
typo silently ignored in a release gate is a wrong green.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from harness.core.names import GroupBy, VariantName
from harness.core.variants import DEVICE_VARIANTS, VARIANTS
from harness.suite.keys import (
    a_name,
    fraction,
    fraction_or_one,
    k_list,
    key,
    non_negative,
    positive,
    tokens_or_auto,
)
from harness.suite.search_table import SearchTable
from harness.suite.training_tables import LossTable, ModelTable, TrainingTable


@dataclass
class SuiteTable:
    name: str | None = key(None, "suite name (default: the file name without .toml)", a_name)
    description: str = key("", "one line shown in the report")
    plugins: list[str] = key([], "local plugin files (relative to the suite) or importable module names")
    cpu_profile: str | None = key(None, "profile applied automatically when the run's device is the CPU")
    ship: str = key("best", "the row `harness release` ships: 'best' (of the rows that pass their "
                    "gates, the best on dev, dense or hybrid) or a row's name (a hybrid's: "
                    "<candidate>+<bm25>)")  # fmt: skip


@dataclass
class DataTable:
    EXTRA = "options"
    source: str = key(help="pair source name (see `harness plugins`)")
    train_split: str = key("train", "split whose pairs train the candidates")
    test_split: str = key("test", "held-out split for the final numbers; never used to choose")
    test_fraction: float | None = key(
        None,
        "when the data has no test split: the share of its queries the harness "
        "holds out as one (default 0.15; groups are kept whole, so it is approximate)",
        lambda v: None if 0 < v < 1 else "expected a share in (0, 1), e.g. 0.15",
    )
    group_by: str = key(
        GroupBy.COMPONENT.value,
        "what a made test split, and the dev split, keep whole: 'component' (a query, its "
        "relevant documents and every query sharing them) or 'query' (cheaper; documents may then be "
        "shared)",
        choices=GroupBy.values(),
    )
    dev_fraction: float = key(
        0.15,
        "fraction of train queries carved out as the dev split (whole groups, by "
        "group_by: no dev query's relevant document is a training positive)",
        fraction,
    )
    dev_corpus_size: int = key(
        0,
        "documents the dev split retrieves from: its relevant ones plus random others (0: all)",
        non_negative,
    )
    seed: int = key(0, "seed of the dev carve and of the limit_* samples")
    limit_train_pairs: int = key(0, "use at most this many training pairs (0: all)", non_negative)
    limit_test_queries: int = key(0, "evaluate at most this many test queries (0: all)", non_negative)
    limit_corpus: int = key(
        0, "keep every judged document plus random others up to this many (0: whole corpus)", non_negative
    )
    options: dict = key({}, "")


@dataclass
class OutOfDomainTable:
    """``[[evaluation.out_of_domain]]``: another suite's test data every candidate and its baseline are
    also evaluated on, to see whether fine-tuning made the model worse elsewhere (forgetting)."""

    name: str = key(
        help="prefix of its metrics: <name>/ndcg@10 (gate it: max_drop against the baseline)", check=a_name
    )
    suite: str = key(
        help="a suite file whose [data] (source, options, splits, limits) gives the test split; "
        "relative to this suite"
    )


@dataclass
class EvaluationTable:
    evaluators: list[str] = key(["retrieval"], "evaluators to run (see `harness plugins`)")
    primary_metric: str = key("ndcg@10", "metric that ranks candidates and selects epochs")
    k_values: list[int] = key([1, 3, 5, 10, 100], "cut-offs of the @k metrics", k_list)
    batch_size: int = key(32, "encoding batch size", positive)
    max_seq_length: int | str | None = key(
        None,
        'truncate texts at evaluation (default: the model\'s own); "auto": the length that covers '
        "training.max_seq_length_share of the documents, as in [training] (the same number when both say it)",
        tokens_or_auto,
    )
    out_of_domain: list[OutOfDomainTable] = key(
        [],
        "other suites' test data, evaluated by the retrieval "
        "evaluator for every candidate and baseline (see "
        "[[evaluation.out_of_domain]])",
    )


def variant_list(v):
    bad = [x for x in v if x not in VARIANTS]
    if bad:
        return f"unknown variant(s) {bad}; expected some of {list(VARIANTS)}"
    if len(set(v)) != len(v):
        return "expected each variant once"
    return None if v else "expected at least one variant"


FASTEST = "fastest"  #: export.ship: the fastest variant that passes, measured in the run


@dataclass
class ExportTable:
    by_device: ClassVar[bool] = False  #: variants were unset and filled in for the run's device
    variants: list[str] | None = key(
        None,
        "ONNX variants built, checked and evaluated per candidate, each its own "
        "row: fp32, O1, O2, O3, fp16 (CUDA), int8 (CPU), openvino-int8 (CPU, pip install "
        '".[openvino]"); fp32 is always built, as the reference. Unset: by device, '
        '["fp32", "int8"] on the CPU with ship = "fastest" (plain ONNX fp32 can '
        'be slower than torch there), ["fp32"] on CUDA',
        variant_list,
    )
    ship: str | None = key(
        None,
        "the variant whose numbers gate the candidate and that `harness release` ships "
        '(required when variants lists more than one); "fastest": the variant that encoded '
        "fastest in this run among those within max_drop of fp32",
    )
    max_drop: float = key(
        0.01,
        "largest drop of the primary metric from fp32 a variant may have; more fails its gate",
        non_negative,
    )
    check_samples: int = key(
        64, "texts encoded by torch and by each variant to compare their embeddings", positive
    )
    min_cosine: float = key(
        0.999, "lowest torch-vs-ONNX cosine of fp32 and O1-O3; lower is an export error", positive
    )
    min_cosine_reduced: float = key(0.95, "the same for fp16 and int8, whose real test is max_drop", positive)

    def problems(self):
        if self.variants is None:
            if self.ship not in (None, FASTEST, VariantName.FP32):
                yield (
                    ".ship",
                    f'expected "fp32" or "fastest" while variants is unset (by device), got {self.ship!r}',
                )
            return
        if self.ship is not None and self.ship != FASTEST and self.ship not in self.variants:
            yield ".ship", f'expected one of the variants {self.variants} or "fastest", got {self.ship!r}'
        if self.ship is None and len(self.variants) > 1:
            yield ".ship", f"missing: variants lists {len(self.variants)}, say which one ships"

    def for_device(self, device: str) -> "ExportTable":
        """The table with unset ``variants`` filled in for ``device`` (:data:`DEVICE_VARIANTS`; ``by_device``
        says so): on the CPU the faster of fp32 and int8 within max_drop ships, unless ``ship`` says fp32."""
        if self.variants is not None:
            return self
        fp32 = VariantName.FP32
        variants = [fp32] if self.ship == fp32 else list(DEVICE_VARIANTS[device])
        table = replace(self, variants=variants, ship=self.ship or (FASTEST if len(variants) > 1 else None))
        table.by_device = True
        return table

    @property
    def built(self) -> list[str]:
        """The variants in build order: fp32 first (every other one is measured against it)."""
        return [VariantName.FP32] + [v for v in self.variants if v != VariantName.FP32]

    @property
    def shipped(self) -> str:
        return self.ship or self.variants[0]


@dataclass
class ThresholdTable:
    metric: str = key(help="metric name, e.g. ndcg@10, or docs_per_s / model_mb for speed and size")
    min: float | None = key(None, "the candidate's value must be >= this")
    max: float | None = key(None, "the candidate's value must be <= this")
    min_gain: float | None = key(None, "value minus the reference's must be >= this")
    min_gain_ci: float | None = key(
        None, "the lower end of the gain's 95% bootstrap interval must be >= this"
    )
    max_drop: float | None = key(
        None, "the reference's value minus the candidate's must be <= this (non-inferiority)"
    )
    against: str = key(
        "baseline",
        "reference of min_gain, min_gain_ci and max_drop: the untuned baseline, the "
        "--compare run's model, or a [[references]] name (a hybrid one: the baseline's hybrid)",
    )
    candidates: list[str] = key([], "glob patterns of candidate names it applies to (default: all)")
    seeds: str = key(
        "mean",
        "with [training] seeds: gate on the mean over the seeds or on the worst seed",
        choices=("mean", "worst"),
    )

    KINDS = ("min", "max", "min_gain", "min_gain_ci", "max_drop")
    RELATIVE = ("min_gain", "min_gain_ci", "max_drop")

    def problems(self):
        if not any(getattr(self, k) is not None for k in self.KINDS):
            yield "", f"expected one of the keys {', '.join(self.KINDS)}"


@dataclass
class ReferenceTable:
    """``[[references]]``: what every candidate is also held against on the same test split."""

    name: str = key(help="its name in the report, results.json and thresholds' `against`", check=a_name)
    type: str = key(
        help="bm25: keyword search (bm25s); hybrid: every candidate's and baseline's dense ranking "
        "fused with a bm25 reference's; model: an untuned model, evaluated exactly as a baseline "
        "(through its ONNX export) and never trained",
        choices=("bm25", "hybrid", "model"),
    )
    model: str | None = key(None, "model: a hub id or local path of a sentence-transformers model")
    revision: str | None = key(None, "model: hub revision (commit, tag or branch)")
    query_prompt: str = key("", "model: text put before every query")
    document_prompt: str = key("", "model: text put before every document")
    k1: float = key(1.5, "BM25 term-frequency saturation", positive)
    b: float = key(0.75, "BM25 length normalisation", fraction_or_one)
    stemmer: str = key("english", 'a PyStemmer language, or "" for no stemming')
    stopwords: str = key("en", 'a bm25s stop-word list ("en"), or "" for none')
    of: str = key("bm25", "hybrid: the bm25 reference whose ranking is fused")
    method: str | None = key(
        None, "hybrid: reciprocal rank fusion or a weighted sum of min-max normalised scores (default: "
        "the better on dev, harness/evaluate/fusion.py)", choices=("rrf", "weighted"),
    )  # fmt: skip
    rrf_k: int | None = key(None, "hybrid, rrf: a document scores 1 / (rrf_k + rank) in each ranking "
                            "(default: chosen on dev among 5, 10, 20, 40, 60, 100)", positive)  # fmt: skip
    depth: int = key(100, "hybrid, rrf: how deep each ranking is fused", positive)
    weight: float | None = key(None, "hybrid, weighted: the dense score's share (default: chosen on dev "
                               "among 0.1 ... 0.9)", fraction_or_one)  # fmt: skip

    @property
    def settings(self) -> dict:
        """The settings that decide its numbers, as results.json records them."""
        keys = {
            "bm25": ("k1", "b", "stemmer", "stopwords"),
            "model": ("model", "revision", "query_prompt", "document_prompt"),
        }.get(self.type)
        if keys is None:  # a hybrid: what it fixes (the rest is chosen on dev, see its candidates' fusion)
            keys = {"rrf": ("of", "method", "rrf_k", "depth"), "weighted": ("of", "method", "weight")}
            keys = keys.get(self.method, ("of", "rrf_k", "depth", "weight"))
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None or self.type != "hybrid"}


#: every suite is held against BM25 unless it lists its own references (``references = []``: none)
DEFAULT_REFERENCES = [ReferenceTable(name="bm25", type="bm25")]


@dataclass
class Suite:
    data: DataTable = key(help="[data]")
    models: list[ModelTable] = key(help="[[models]]")
    losses: list[LossTable] = key(help="[[losses]]")
    suite: SuiteTable = key(SuiteTable, "")
    training: TrainingTable = key(TrainingTable, "")
    search: SearchTable | None = key(
        None, "[search]: a recipe search on dev within a budget (trials, minutes), see docs/training.md"
    )
    evaluation: EvaluationTable = key(EvaluationTable, "")
    export: ExportTable = key(ExportTable, "")
    thresholds: list[ThresholdTable] = key([], "")
    references: list[ReferenceTable] = key(
        DEFAULT_REFERENCES,
        "[[references]]: BM25 and hybrid search, evaluated "
        "beside every candidate (default: one bm25; references = [] for none)",
    )
    profiles: dict = key({}, "named override tables, merged over the suite by --profile NAME")

    # set by the loader, not by the file
    path: Path = field(default=Path("."), metadata={"internal": True})
    profile: str | None = field(default=None, metadata={"internal": True})
    sha256: str = field(default="", metadata={"internal": True})
    overrides: list = field(default_factory=list, metadata={"internal": True})  #: ``--set KEY=VALUE``

    @property
    def name(self) -> str:
        return self.suite.name or self.path.stem

    def candidate_losses(self) -> list[tuple[LossTable, tuple[str, ...]]]:
        """Each candidate of a model: its loss, and the losses its search chooses among (none: a loss
        of its own). The losses a ``[search]`` lists become one candidate, in the first one's place."""
        searched = tuple(self.search.loss or ()) if self.search is not None else ()
        out = []
        for loss in self.losses:
            if loss.name not in searched:
                out.append((loss, ()))
            elif not any(s for _, s in out):
                first = next(x for x in self.losses if x.name in searched)
                out.append((first, searched))
        return out

    def candidate_names(self) -> set[str]:
        """The name of every candidate the suite declares (see :func:`item_name`)."""
        return {item_name(m, loss, s) for m in self.models for loss, s in self.candidate_losses()}

    def problems(self):
        for i, m in enumerate(self.models):  # a teacher is trained before its student
            if m.distill_from is not None:
                earlier = sorted(
                    item_name(t, loss, s) for t in self.models[:i] for loss, s in self.candidate_losses()
                )
                if m.distill_from not in earlier:
                    yield (
                        f"models[{i}].distill_from",
                        (
                            f"expected a candidate of an earlier [[models]] entry, one "
                            f"of {earlier}, got {m.distill_from!r}"
                        ),
                    )
        refs = {r.name: r for r in self.references}
        for i, r in enumerate(self.references):
            if r.name in ("baseline", "compare", VariantName.FP32):
                yield (
                    f"references[{i}].name",
                    f"{r.name!r} is taken (a threshold's `against` means it already)",
                )
            if sum(x.name == r.name for x in self.references) > 1:
                yield f"references[{i}].name", f"duplicate name {r.name!r}"
            if r.type == "model" and not r.model:
                yield (
                    f"references[{i}].model",
                    "missing: a model reference names its model (hub id or local path)",
                )
            if r.type == "model" and r.name in {m.name for m in self.models}:
                yield f"references[{i}].name", f"{r.name!r} is also a [[models]] name"
            if r.type == "hybrid" and (r.of not in refs or refs[r.of].type != "bm25"):
                bm25 = sorted(n for n, x in refs.items() if x.type == "bm25")
                yield (
                    f"references[{i}].of",
                    f"expected the name of a bm25 reference of this suite ({bm25 or 'none'}), got {r.of!r}",
                )
        for i, t in enumerate(self.thresholds):
            if t.against not in ("baseline", "compare", *refs):
                yield (
                    f"thresholds[{i}].against",
                    (
                        f"expected 'baseline', 'compare' or a reference's name "
                        f"{sorted(refs)}, got {t.against!r}"
                    ),
                )
        yield from self.search_problems()
        for table, items in (("models", self.models), ("losses", self.losses)):
            if not items:
                yield table, "expected at least one entry"
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                if item.name in seen:
                    yield (
                        f"{table}[{i}].name",
                        f"duplicate name {item.name!r} (also {table}[{seen[item.name]}])",
                    )
                seen[item.name] = i

    def search_problems(self):
        if self.search is None:
            return
        names = [x.name for x in self.losses]
        for i, name in enumerate(self.search.loss or ()):
            if name not in names:
                yield f"search.loss[{i}]", f"expected a [[losses]] name, one of {names}, got {name!r}"
        if self.search.loss and "search" in names:
            yield (
                "search.loss",
                "a [[losses]] entry is named 'search': <model>-search would be two candidates",
            )
        if self.training.grid:
            yield "search", "give [training.grid] (every combination) or [search] (a budget), not both"


def item_name(model: ModelTable, loss: LossTable | None, searched: tuple[str, ...] = ()) -> str:
    """A baseline's or candidate's name in a suite: ``<model>-baseline``, ``<model>-<loss>``, or
    ``<model>-search`` for the candidate whose search chooses among losses."""
    if searched:
        return f"{model.name}-search"
    return f"{model.name}-{'baseline' if loss is None else loss.name}"
