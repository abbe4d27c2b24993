"""The ``beir`` pair source: BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

Where it looks, in order: the ``path`` option (relative to the suite file), then
``$HARNESS_DATA_DIR/<dataset>``, then the download cache ``<cache>/beir/<dataset>``. If none has
the dataset, it downloads the public BEIR zip into the cache; offline, that fails with a message
listing every place it looked.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl

from harness import hookimpl
from harness.api import LoadContext, Option, PairSource, RetrievalData, fingerprint, json_lines
from harness.errors import DataError

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{dataset}.zip"


def read_jsonl(path: Path, columns: dict[str, str]) -> pl.DataFrame:
    """Read a JSON-lines file; ``columns`` maps wanted column -> key in the file. Errors name the line."""
    rows = {c: [] for c in columns}
    for n, obj in json_lines(path):
        for col, k in columns.items():
            v = obj.get(k, "")
            if k == "_id" and k not in obj:
                raise DataError(f"{path}:{n}: no {k!r} key")
            rows[col].append("" if v is None else str(v))
    return pl.DataFrame(rows, schema={c: pl.Utf8 for c in columns})


def read_qrels(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_csv(path, separator="\t", has_header=True, infer_schema_length=0, quote_char=None)
    except Exception as e:  # noqa: BLE001 - polars raises several kinds
        raise DataError(f"{path}: cannot read qrels: {e}") from None
    if df.width < 3:
        raise DataError(f"{path}: expected 3 tab-separated columns query-id, corpus-id, score; got {df.columns}")
    df = df.select(df.columns[:3])
    df.columns = ["query_id", "doc_id", "score"]
    try:
        return df.with_columns(pl.col("score").cast(pl.Int64))
    except Exception:  # noqa: BLE001
        raise DataError(f"{path}: the score column must hold integers") from None


def load_beir_folder(folder: Path, splits: list[str]) -> RetrievalData:
    corpus_file, queries_file = folder / "corpus.jsonl", folder / "queries.jsonl"
    for f in (corpus_file, queries_file):
        if not f.is_file():
            raise DataError(f"{f}: missing (a BEIR folder has corpus.jsonl, queries.jsonl and qrels/<split>.tsv)")
    corpus = read_jsonl(corpus_file, {"id": "_id", "title": "title", "body": "text"})
    corpus = corpus.select(
        "id",
        pl.when(pl.col("title").str.strip_chars() == "")
        .then(pl.col("body"))
        .otherwise(pl.col("title") + " " + pl.col("body"))
        .str.strip_chars()
        .alias("text"),
    )
    queries = read_jsonl(queries_file, {"id": "_id", "text": "text"})
    qrels = {}
    files = [corpus_file, queries_file]
    for split in splits:
        qf = folder / "qrels" / f"{split}.tsv"
        if not qf.is_file():
            available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
            raise DataError(f"{qf}: missing; this dataset has the splits {available}")
        qrels[split] = read_qrels(qf)
        files.append(qf)
    return RetrievalData(corpus, queries, qrels, fingerprint(files), f"BEIR folder {folder}")


def download(dataset: str, cache: Path, url: str) -> Path:
    import shutil
    import urllib.request

    cache.mkdir(parents=True, exist_ok=True)
    url = url.format(dataset=dataset)
    zpath = cache / f"{dataset}.zip"
    tmp = zpath.with_suffix(".part")
    with urllib.request.urlopen(url, timeout=60) as r, tmp.open("wb") as f:
        shutil.copyfileobj(r, f)
    tmp.rename(zpath)
    with zipfile.ZipFile(zpath) as z:
        z.extractall(cache)
    zpath.unlink()
    return cache / dataset


class BeirSource(PairSource):
    name = "beir"
    description = "BEIR folders: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (downloads the public zip if missing)"
    options = {
        "dataset": Option(str, None, "BEIR dataset name, e.g. scifact", required=True),
        "path": Option(str, None, "folder holding the dataset (default: $HARNESS_DATA_DIR/<dataset>)"),
        "url": Option(str, BEIR_URL, "download URL template; {dataset} is replaced"),
    }

    def load(self, options, ctx: LoadContext) -> RetrievalData:
        dataset = options["dataset"]
        splits = list(ctx.splits)
        looked = []
        candidates = []
        if options.get("path"):
            candidates.append(ctx.suite_dir / options["path"])
        if ctx.data_dir:
            candidates.append(ctx.data_dir / dataset)
        candidates.append(ctx.cache_dir / "beir" / dataset)
        for folder in candidates:
            looked.append(str(folder))
            if (folder / "corpus.jsonl").is_file():
                return load_beir_folder(folder, splits)
        if options.get("path"):  # an explicit path that is wrong is an error, not a download
            raise DataError(f"data.path: no BEIR dataset at {looked[0]} (corpus.jsonl missing)")
        try:
            folder = download(dataset, ctx.cache_dir / "beir", options.get("url") or BEIR_URL)
        except Exception as e:  # noqa: BLE001 - offline, DNS, HTTP errors
            raise DataError(
                f"BEIR dataset {dataset!r} not found; looked in {', '.join(looked)} "
                f"(set HARNESS_DATA_DIR or data.path), and downloading "
                f"{(options.get('url') or BEIR_URL).format(dataset=dataset)} failed: {e}"
            ) from None
        return load_beir_folder(folder, splits)


@hookimpl
def harness_register_pair_sources(register):
    register(BeirSource())
