"""The tables of a suite that say what trains: ``[[models]]`` (students included), ``[[losses]]``
with their ``[losses.hard_negatives]`` and ``[training]``. The rest of the schema, and the
:class:`harness.suite.schema.Suite` that holds them all, is in :mod:`harness.suite.schema`."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.memory import size_problem
from harness.suite.keys import (
    a_name,
    check_field,
    describe,
    did_you_mean,
    fraction,
    key,
    non_negative,
    positive,
    tokens_or_auto,
)


@dataclass
class ModelTable:
    name: str = key(help="short name used in candidate names", check=a_name)
    base: str = key(help="hub id or local path of a sentence-transformers model")
    revision: str | None = key(None, "hub revision (commit, tag or branch)")
    query_prompt: str = key("", "text put before every query (e.g. 'query: ' for e5)")
    document_prompt: str = key("", "text put before every document")
    layers: list[int] | None = key(
        None,
        "a smaller student: its candidates start from these transformer layers of "
        "the base (0-based, e.g. [0, 2, 4]); its baseline stays the untuned full base",
    )
    keep_layers: int | None = key(
        None,
        "a smaller student with this many of the base's (or its teacher's) layers: the first, the "
        "last, and the middle ones that score best on dev (6 layers, keep 3: [0, m, 5])",
        positive,
    )
    distill_from: str | None = key(
        None,
        "a student starts from this earlier candidate's layers and first learns the "
        "embeddings it gives the corpus and the training queries (MSE; no labels needed), then "
        "trains on the pairs; a static model is distilled from it",
    )
    distill_epochs: int = key(1, "epochs of that distillation", positive)
    type: str = key(
        "transformer",
        "'static': a token-embedding table distilled from base (or from distill_from) with "
        "Model2Vec, then fine-tuned on the pairs as a sentence-transformers StaticEmbedding; "
        "it encodes with numpy, no transformer and no ONNX",
        choices=("transformer", "static"),
    )
    pca_dims: int = key(
        256, "a static model's embedding size (Model2Vec's PCA of the token vectors)", positive
    )
    learning_rate: float | None = key(
        None,
        "this model's learning rate, over training.learning_rate, a grid's and a search's (a static "
        "model learns at about 0.05)",
        positive,
    )
    batch_size: int | None = key(
        None, "this model's batch size, over training.batch_size, a grid's and a search's", positive
    )

    def problems(self):
        if self.layers is not None and self.keep_layers is not None:
            yield ".layers", "give layers or keep_layers, not both"
        if self.static and self.student:
            yield (
                ".type",
                "a static model has no transformer layers: give layers/keep_layers or type = 'static'",
            )
        if self.distill_from is not None and not (self.student or self.static):
            yield (
                ".distill_from",
                "distils into a smaller student: give layers or keep_layers too (or type = 'static')",
            )
        if self.layers is not None and (
            not self.layers
            or len(set(self.layers)) != len(self.layers)
            or any(not isinstance(i, int) or i < 0 for i in self.layers)
        ):
            yield ".layers", f"expected distinct layer numbers >= 0, e.g. [0, 2, 4], got {self.layers!r}"

    @property
    def static(self) -> bool:
        """Its models are static embeddings (Model2Vec, StaticEmbedding)."""
        return self.type == "static"

    @property
    def kind(self) -> str:
        """What results.json calls its candidates: ``transformer``, ``student`` or ``static``."""
        return "static" if self.static else "student" if self.student else "transformer"

    @property
    def student(self) -> bool:
        """Its candidates train a layer-reduced copy of the base."""
        return self.layers is not None or self.keep_layers is not None


@dataclass
class HardNegativesTable:
    """``[losses.hard_negatives]``: mine hard negatives for this loss's training pairs with
    sentence-transformers' ``mine_hard_negatives`` (before training, cached in the run folder)."""

    num_negatives: int = key(1, "negatives per (query, positive) pair", positive)
    range_min: int = key(
        0,
        "skip this many of each query's top-ranked documents (the likeliest unlabelled positives)",
        non_negative,
    )
    range_max: int | None = key(
        None,
        "consider only the top this many documents (default: derived from num_negatives and the margins)",
        positive,
    )
    absolute_margin: float | None = key(
        None, "keep a negative only if its score is below the positive's minus this"
    )
    relative_margin: float | None = key(
        None,
        "keep a negative only if its score is below the positive's minus "
        "|positive's| times this (0.05: 5% below)",
        fraction,
    )
    max_score: float | None = key(None, "keep a negative only if its score is at most this")
    sampling: str = key(
        "top",
        "take the top-ranked candidates in the range, or a random sample of them",
        choices=("top", "random"),
    )
    model: str = key(
        "base",
        "the model that mines: 'base' (the candidate's base model), the name of a "
        "[[models]] entry, the name of another candidate of this suite listed before this one "
        "(its trained model), or a hub id / local path",
    )
    batch_size: int = key(64, "encoding batch size of the mining model", positive)
    false_negative_share: float = key(
        0.1,
        "warn when more than this share of the mined negatives score at "
        "least as high as their positive (likely unlabelled positives)",
        fraction,
    )

    def problems(self):
        if self.range_max is not None and self.range_max - self.range_min < self.num_negatives:
            yield (
                ".range_max",
                (
                    f"expected range_max - range_min >= num_negatives ({self.num_negatives}), got "
                    f"{self.range_max} - {self.range_min}"
                ),
            )


@dataclass
class LossTable:
    EXTRA = "options"
    name: str = key(help="short name used in candidate names", check=a_name)
    type: str = key(help="loss name (see `harness plugins`), e.g. MultipleNegativesRankingLoss")
    hard_negatives: HardNegativesTable | None = key(
        None, "mine hard negatives for this loss (a table, see [losses.hard_negatives])"
    )
    options: dict = key({}, "")


@dataclass
class TrainingTable:
    epochs: int = key(1, "training epochs; the dev split picks the best one", positive)
    batch_size: int = key(
        32, "pairs per batch (in-batch negatives grow with it)", lambda v: None if v >= 2 else "expected >= 2"
    )
    learning_rate: float = key(2e-5, "peak learning rate", positive)
    warmup_ratio: float = key(0.1, "fraction of steps of linear warm-up", fraction)
    weight_decay: float = key(0.01, "AdamW weight decay", non_negative)
    max_seq_length: int | str | None = key(
        None,
        'truncate training texts to this many tokens (default: the model\'s); "auto": the length that '
        "covers max_seq_length_share of the documents with the model's tokenizer (at most the model's "
        "own limit), recorded in results.json",
        tokens_or_auto,
    )
    max_seq_length_share: float = key(
        0.9,
        'with max_seq_length = "auto": the share of the documents whose every token it keeps',
        lambda v: None if 0 < v <= 1 else "expected a share in (0, 1]",
    )
    max_memory: str | None = key(
        None,
        'the most memory a training may hold, e.g. "8GiB" (default: 85% of the memory free when it begins, '
        "or of the GPU's): a probe before the first step measures what the batch costs and fits it in "
        "(a cached loss's mini-batches, gradient checkpointing) without changing what is learned; when "
        "nothing fits, nothing trains and the error says what would",
        size_problem,
    )
    seed: int = key(42, "training seed")
    batch_sampler: str = key(
        "auto",
        "how batches are drawn: auto (the loss's own: in-batch losses never put a text twice in a batch), "
        "batch_sampler (any order) or no_duplicates (sentence-transformers' BatchSamplers.NO_DUPLICATES)",
        choices=("auto", "batch_sampler", "no_duplicates"),
    )
    precision: str = key(
        "auto",
        "auto: bf16/fp16 on CUDA, fp32 on the CPU; bf16 runs on a CPU too (autocast), fp16 only on CUDA",
        choices=("auto", "fp32", "fp16", "bf16"),
    )
    select: str = key(
        "best_dev", "which epoch is kept: the best on dev, or the last", choices=("best_dev", "last")
    )
    eval_batch_size: int = key(64, "batch size of the dev evaluation during training", positive)
    processes: int = key(
        1,
        "data-parallel training processes of one candidate (DDP via torchrun): one per GPU; "
        "batch_size is per process",
        positive,
    )
    seeds: list[int] = key(
        [],
        "train every candidate once per seed (instead of `seed`): the report gives the mean "
        "and spread, thresholds gate on the mean or the worst seed, the best seed on dev ships",
    )
    grid: dict = key(
        {},
        "settings to try, each a list (e.g. learning_rate = [2e-5, 5e-5]): every combination is "
        "trained, the best on the dev split wins; the test split never chooses",
    )
    refit: bool = key(
        False,
        "once the dev split has chosen (the epoch, a grid's setting), train once more from the base "
        "model on train + dev for the chosen number of epochs: that model is tested and ships (more "
        "pairs, the same choices; the test split still never chooses)",
    )
    learning_curve: list[float] = key(
        [],
        "also train on these fractions of the training pairs (e.g. [0.25, 0.5]) "
        "and report the dev metric of each beside 100%: would more data help?",
        lambda v: (
            None
            if all(0 < f < 1 for f in v) and len(set(v)) == len(v)
            else "expected distinct fractions in (0, 1)"
        ),
    )

    #: the keys a ``[training.grid]`` may vary
    GRID_KEYS = (
        "epochs",
        "batch_size",
        "learning_rate",
        "warmup_ratio",
        "weight_decay",
        "max_seq_length",
        "batch_sampler",
    )

    def problems(self):
        for k, values in self.grid.items():
            if k not in self.GRID_KEYS:
                yield (
                    f".grid.{k}",
                    f"unknown key{did_you_mean(k, self.GRID_KEYS)} (a grid varies "
                    f"{', '.join(self.GRID_KEYS)})",
                )
            elif not isinstance(values, list) or not values:
                yield f".grid.{k}", f"expected a non-empty list of values, got {describe(values)}"
            else:
                for i, v in enumerate(values):
                    msg = check_field(TrainingTable, k, v)
                    if k == "max_seq_length" and v == "auto":
                        msg = "expected a number of tokens > 0 (a grid tries given lengths)"
                    if msg:
                        yield f".grid.{k}[{i}]", msg
        if len(set(self.seeds)) != len(self.seeds):
            yield ".seeds", f"expected each seed once, got {self.seeds}"

    def points(self) -> list[dict]:
        """Every combination of the grid's values, in the order the suite lists them ([{}] without a grid)."""
        import itertools

        keys = list(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    @property
    def seed_list(self) -> list[int]:
        return list(self.seeds) or [self.seed]
