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
from harness.api import (
    LoadContext,
    Option,
    PairSource,
    RetrievalData,
    fingerprint,
    json_lines,
    qrels_frame,
    suite_path,
    text_lines,
)
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
    """A qrels file: ``query-id<TAB>corpus-id<TAB>score`` lines (more columns are ignored). The first
    line is a header when its score is not an integer, whatever it says: a file without the
    header keeps its first judgement. Errors name the file and the line."""
    rows, first = [], True
    for n, line in text_lines(path):
        if not line.strip():
            continue
        header, first = first, False
        fields = line.split("\t")
        if len(fields) < 3:
            raise DataError(
                f"{path}:{n}: expected 3 tab-separated columns query-id, corpus-id, score; "
                f"got {len(fields)} ({line[:60]!r})"
            )
        try:
            score = int(fields[2].strip())
        except ValueError:
            if header:
                continue
            raise DataError(
                f"{path}:{n}: the score must be an integer, got {fields[2].strip()[:30]!r}"
            ) from None
        rows.append((fields[0].strip(), fields[1].strip(), score))
    return qrels_frame(rows)


def load_beir_folder(folder: Path, splits: list[str]) -> RetrievalData:
    corpus_file, queries_file = folder / "corpus.jsonl", folder / "queries.jsonl"
    for f in (corpus_file, queries_file):
        if not f.is_file():
            raise DataError(
                f"{f}: missing (a BEIR folder has corpus.jsonl, queries.jsonl and qrels/<split>.tsv)"
            )
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
    description = (
        "BEIR folders: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (downloads the public zip if missing)"
    )
    options = {
        "dataset": Option(str, None, "BEIR dataset name, e.g. scifact", required=True),
        "path": Option(
            str, None, "folder holding the dataset (default: $HARNESS_DATA_DIR/<dataset>)", path="folder"
        ),
        "url": Option(str, BEIR_URL, "download URL template; {dataset} is replaced"),
    }

    def load(self, options, ctx: LoadContext) -> RetrievalData:
        dataset = options["dataset"]
        splits = list(ctx.splits)
        if options.get(
            "path"
        ):  # an explicit path is the only place looked: if it is wrong, that is the error
            folder = suite_path(ctx.suite_dir, options["path"])
            if not (folder / "corpus.jsonl").is_file():
                what = "no such folder" if not folder.exists() else "corpus.jsonl missing"
                raise DataError(
                    f"data.path: no BEIR dataset at {folder} ({what}); fix the path, or leave it out to "
                    "use $HARNESS_DATA_DIR/<dataset> or the download"
                )
            return load_beir_folder(folder, splits)
        looked = []
        candidates = ([ctx.data_dir / dataset] if ctx.data_dir else []) + [ctx.cache_dir / "beir" / dataset]
        for folder in candidates:
            looked.append(str(folder))
            if (folder / "corpus.jsonl").is_file():
                return load_beir_folder(folder, splits)
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
