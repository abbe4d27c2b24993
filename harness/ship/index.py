"""Embeddings files: a corpus encoded by an artifact into Parquet (``id``, ``vector``), stamped with
the model's fingerprint so that vectors of two models are never mixed, and exact top-k search.

Everything streams in chunks: a corpus larger than memory is read, encoded and written a chunk at a
time (one Parquet row group each).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from harness.errors import ConfigError, DataError, HarnessError

FINGERPRINT_KEY = b"harness.fingerprint"
CORPUS_KEY = b"harness.corpus"  #: the digest of the documents encoded (harness.ship.hybrid.CorpusDigest)
CHUNK = 2048


def read_corpus(path: Path, chunk: int | None = None) -> Iterator[tuple[list[str], list[str]]]:
    """``(ids, texts)`` chunks from JSONL (``id`` or BEIR's ``_id``; ``text``, optional ``title``), CSV
    or Parquet (``id`` and ``text`` columns)."""
    path = Path(path)
    chunk = chunk or CHUNK
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        from harness.api import json_lines

        ids: list[str] = []
        texts: list[str] = []
        for n, obj in json_lines(path):
            key = "id" if "id" in obj else "_id"
            if key not in obj or not isinstance(obj.get("text"), str):
                raise DataError(f"{path}:{n}: expected an 'id' (or '_id') and a string 'text'")
            title = obj.get("title") or ""
            ids.append(str(obj[key]))
            texts.append(f"{title} {obj['text']}".strip() if title else obj["text"])
            if len(ids) == chunk:
                yield ids, texts
                ids, texts = [], []
        if ids:
            yield ids, texts
    elif suffix in (".csv", ".parquet"):
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        try:
            if suffix == ".csv":
                reader = pacsv.open_csv(
                    path,
                    convert_options=pacsv.ConvertOptions(
                        column_types={"id": "string", "text": "string"}, include_columns=["id", "text"]
                    ),
                )
                batches = iter(reader)
            else:
                batches = pq.ParquetFile(path).iter_batches(batch_size=chunk, columns=["id", "text"])
            for batch in batches:
                cols = batch.to_pydict()
                yield [str(i) for i in cols["id"]], ["" if t is None else str(t) for t in cols["text"]]
        except (KeyError, ValueError, pa.ArrowException) as e:  # ArrowInvalid is a ValueError too
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f"{path}: not a {suffix[1:].upper()} file with 'id' and 'text' columns ({first})"
            ) from None
    else:
        raise DataError(f"{path}: unknown corpus format {suffix!r}; expected .jsonl, .csv or .parquet")


def corpus_digest(corpus: Path) -> str:
    """The :class:`harness.ship.hybrid.CorpusDigest` of the corpus file ``corpus``, as encoding it gives."""
    from harness.ship.hybrid import CorpusDigest

    digest = CorpusDigest()
    for ids, texts in read_corpus(corpus):
        digest.update(ids, texts)
    return digest.hexdigest()


def file_meta(path: Path, key: bytes) -> str | None:
    """One of the harness's keys in the embeddings file ``path``'s metadata."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata.metadata or {}
    except Exception as e:  # noqa: BLE001 - not a Parquet file
        raise DataError(f"{path}: not an embeddings Parquet file ({e})") from None
    value = meta.get(key)
    return value.decode() if value else None


def file_fingerprint(path: Path) -> str | None:
    return file_meta(path, FINGERPRINT_KEY)


def open_encoder(artifact: Path):
    """The artifact's encoder (no caching: corpora stream through it), with the batch size and
    max_seq_length its numbers in the report were measured at, and its fingerprint."""
    from harness.ship.release import fingerprint

    artifact = Path(artifact)
    manifest = artifact / "harness-artifact.json"
    info = json.loads(manifest.read_text()) if manifest.is_file() else {}
    measured = {
        k: v for k, v in (info.get("encoder") or {}).items() if k in ("batch_size", "max_seq_length") and v
    }
    settings = {**info.get("prompts", {}), **measured, "cache": False}
    if (artifact / "static").is_dir():  # a static model: its token table, in numpy
        from harness.encode.static import StaticEncoder

        return StaticEncoder(artifact / "static", **settings), fingerprint(artifact)
    if not (artifact / "onnx" / "model.onnx").is_file():
        raise ConfigError(f"{artifact}: not a model artifact (no onnx/model.onnx; see `harness release`)")
    if info.get("engine") == "openvino":  # the shipped variant runs on OpenVINO: so do its embeddings
        from harness.encode.encoder import OpenVinoEncoder

        return OpenVinoEncoder(artifact, "cpu", file=info["variant_file"], **settings), fingerprint(artifact)
    from harness.encode.encoder import OnnxEncoder

    return OnnxEncoder(artifact, "cpu", **settings), fingerprint(artifact)


def encode_corpus(
    artifact: Path, corpus: Path, out: Path, append: bool = False, progress: bool = False
) -> dict:
    """Encode ``corpus`` into ``out``; with ``append``, add to an existing file of the same model. A
    hybrid artifact's BM25 index of the whole corpus is (re)built beside it (:mod:`harness.ship.hybrid`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.ship import hybrid

    encoder, fp = open_encoder(artifact)
    settings = hybrid.hybrid_settings(artifact)
    out = Path(out)
    existing = out.is_file()
    if existing and not append:
        raise ConfigError(f"--out {out}: exists (use --append to add to it)")
    if existing and settings is not None:
        raise ConfigError(
            f"--append {out}: {artifact} is a hybrid artifact, whose BM25 index is built over the whole "
            "corpus at once; encode the whole corpus into a new file"
        )
    if existing and file_fingerprint(out) != fp:
        raise HarnessError(
            f"{out} holds embeddings of model {file_fingerprint(out)}, not of {artifact} ({fp}): "
            "mixing embedding spaces gives nonsense; write a new file and reindex everything"
        )
    tmp = out.with_name(out.name + ".tmp")
    writer = None
    rows = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="encoding", unit="doc")
    try:
        seen: set[str] = set()  # a document id twice would make search return it twice
        held: set[str] = set()  # the ids already in the file appended to
        digest = hybrid.CorpusDigest(file_meta(out, CORPUS_KEY) or "" if existing else "")
        lexical: tuple[list, list] = ([], [])  # a hybrid's: every id and text, for its BM25 index
        if existing:  # copy what is there, row group by row group
            src = pq.ParquetFile(out)
            writer = pq.ParquetWriter(tmp, src.schema_arrow)
            for i in range(src.num_row_groups):
                group = src.read_row_group(i)
                held.update(group.column("id").to_pylist())
                writer.write_table(group)
                rows += src.metadata.row_group(i).num_rows
        for ids, texts in read_corpus(corpus):
            for doc_id in ids:
                if doc_id in seen or doc_id in held:
                    where = f"{out} already holds it" if doc_id in held else "it occurs twice"
                    raise DataError(
                        f"{corpus}: document id {doc_id!r} is not unique ({where}); each document needs "
                        "its own id"
                    )
                seen.add(doc_id)
            digest.update(ids, texts)
            if settings is not None:
                lexical[0].extend(ids)
                lexical[1].extend(texts)
            vecs = encoder.encode_documents(texts)
            dim = vecs.shape[1]
            table = pa.table(
                {
                    "id": pa.array(ids, pa.string()),
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim),
                }
            )
            if writer is None:
                schema = table.schema.with_metadata(
                    {FINGERPRINT_KEY: fp.encode(), b"harness.model": str(artifact).encode()}
                )
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.cast(writer.schema))
            rows += len(ids)
            if bar:
                bar.update(len(ids))
    except BaseException:
        if writer is not None:
            writer.close()
            writer = None
        tmp.unlink(missing_ok=True)  # nothing half-written is left beside the file
        raise
    finally:
        if writer is not None:
            writer.add_key_value_metadata({CORPUS_KEY: digest.hexdigest().encode()})
            writer.close()
        if bar:
            bar.close()
    if writer is None or rows == 0:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{corpus}: no documents")
    if settings is not None:
        try:
            hybrid.build(hybrid.index_dir(out), *lexical, settings, fp, digest.hexdigest())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(out)
    return {
        "file": str(out),
        "rows": rows,
        "fingerprint": fp,
        "corpus": digest.hexdigest(),
        "bm25": str(hybrid.index_dir(out)) if settings is not None else None,
    }


def check(
    file: Path, artifact: Path, want: str | None = None, corpus: Path | None = None
) -> tuple[bool, str]:
    """Whether ``file`` was made by ``artifact`` (whose fingerprint is ``want``, computed if not given),
    from ``corpus`` when given; for a hybrid artifact, its BM25 index too (:mod:`harness.ship.hybrid`)."""
    from harness.ship import hybrid
    from harness.ship.release import fingerprint

    have, want = file_fingerprint(Path(file)), want or fingerprint(Path(artifact))
    if have != want:
        return False, (
            f"{file}: made by another model (fingerprint {have or 'none'}), not by {artifact} ({want}); "
            "do not mix these embeddings: reindex"
        )
    made_from = file_meta(Path(file), CORPUS_KEY)
    if corpus is not None and made_from != (given := corpus_digest(Path(corpus))):
        return False, (
            f"{file}: made from another corpus (digest {made_from or 'none recorded'}) than {corpus} "
            f"({given}): "
            "reindex"
        )
    lines = [f"{file}: made by {artifact} (fingerprint {want})" + (f" from {corpus}" if corpus else "")]
    if hybrid.hybrid_settings(Path(artifact)) is not None:
        ok, message = hybrid.check_index(Path(file), want, made_from)
        if not ok:
            return False, message
        lines.append(message)
    return True, "\n".join(lines)


def search(file: Path, artifact: Path, queries: list[str], k: int = 10):
    """``(doc_ids, top, scores)`` of :func:`harness.ship.hybrid.rank`: the exact top-``k`` of each query
    over the embeddings file (a hybrid artifact's: fused with BM25's, as its run chose), once checked."""
    from harness.ship import hybrid

    encoder, fp = open_encoder(artifact)
    ok, message = check(file, artifact, fp)
    if not ok:
        raise HarnessError(message)
    return hybrid.rank(Path(file), encoder, hybrid.hybrid_settings(Path(artifact)), queries, k)
