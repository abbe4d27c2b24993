"""Reading the files a user gives: a path relative to the suite, text and JSON lines with their line
numbers in every error, a whole JSON file, a fingerprint of the bytes, and the folder a dataset
lives in (or its download). Plugins get these through :mod:`harness.api`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from harness.errors import DataError

if TYPE_CHECKING:
    from harness.api import LoadContext


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
