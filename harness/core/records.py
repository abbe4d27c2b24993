"""Content-addressed steps, so that ``harness run --resume`` redoes only unfinished work.

Each step of a candidate (training, export, each variant's evaluation, the whole result) is keyed
by a hash of everything that decides its output: the harness version, the device, the data's
fingerprint and the suite tables it depends on. A step's output is written first and its key
last (atomically), so a run killed at any moment leaves either a finished step with its key or
an unfinished one without: ``--resume`` re-uses the first and redoes the second.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MARK = ".harness-step"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: into a temporary file of this process's own beside it,
    then renamed over it (two processes writing the same file never mix their bytes)."""
    import secrets

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _record(folder: Path) -> dict | None:
    """The step record of ``folder``: ``{"key", "files": {path: [size, sha256]}}``; a record written
    before files were recorded (plain key text) has no ``files``. None: no record."""
    try:
        text = (Path(folder) / MARK).read_text()
    except OSError:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    return doc if isinstance(doc, dict) and isinstance(doc.get("key"), str) else {"key": text}


def _files(folder: Path) -> dict[str, list]:
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() and p.name != MARK:
            out[p.relative_to(folder).as_posix()] = [p.stat().st_size, file_digest(p)]
    return out


def missing(folder: Path) -> list[str]:
    """The files ``folder``'s step record lists that are gone or changed (size, then sha256)."""
    record = _record(folder) or {}
    bad = []
    for rel, (size, digest) in (record.get("files") or {}).items():
        p = Path(folder) / rel
        if not p.is_file() or p.stat().st_size != size or file_digest(p) != digest:
            bad.append(rel)
    return bad


def is_done(folder: Path, key: str) -> bool:
    """Whether ``folder`` holds the finished output of the step keyed ``key``: its record has that
    key and every file it recorded is there, unchanged (a deleted or damaged output is redone)."""
    record = _record(folder)
    return record is not None and record["key"] == key and not missing(folder)


def mark_done(folder: Path, key: str) -> None:
    """Record ``folder`` as the finished output of step ``key``, with the size and hash of each file."""
    write_atomic(Path(folder) / MARK, json.dumps({"key": key, "files": _files(folder)}))


def load(path: Path, key: str) -> Any:
    """The value stored at ``path`` under ``key``, or None when it is missing, unreadable or another
    step's."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc.get("value") if isinstance(doc, dict) and doc.get("key") == key else None


def store(path: Path, key: str, value: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(path), json.dumps({"key": key, "value": value}, default=str))


def folder_key(folder: Path) -> str:
    """The step key of a folder a step wrote (so that what is derived from it is redone when it changes),
    or "" for a folder no step wrote (a base model)."""
    record = _record(folder)
    return record["key"] if record else ""
