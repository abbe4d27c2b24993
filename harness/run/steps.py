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
from pathlib import Path
from typing import Any

MARK = ".harness-step"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def is_done(folder: Path, key: str) -> bool:
    """Whether ``folder`` holds the finished output of the step keyed ``key``."""
    try:
        return (Path(folder) / MARK).read_text() == key
    except OSError:
        return False


def mark_done(folder: Path, key: str) -> None:
    _write(Path(folder) / MARK, key)


def load(path: Path, key: str) -> Any:
    """The value stored at ``path`` under ``key``, or None when it is missing, unreadable or another step's."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc.get("value") if isinstance(doc, dict) and doc.get("key") == key else None


def store(path: Path, key: str, value: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _write(Path(path), json.dumps({"key": key, "value": value}, default=str))


def folder_key(folder: Path) -> str:
    """The step key of a folder a step wrote (so that what is derived from it is redone when it changes),
    or "" for a folder no step wrote (a base model)."""
    try:
        return (Path(folder) / MARK).read_text()
    except OSError:
        return ""
