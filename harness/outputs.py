"""Output paths, checked before any work: a folder the harness must write into (``--out``), a file
it must write (``--junitxml``, ``encode --out``), a new or empty folder (``release --to``). Each
check writes (and removes) a probe file, so a read-only place is found at the start (exit 4, naming
the option and the path) instead of after hours of training."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.errors import Problem


def _probe(folder: Path) -> str | None:
    """Why nothing can be written in ``folder``, or None: a probe file is written in it, or, when it
    does not exist yet, in the nearest folder above it that does (nothing is created)."""
    existing = next((p for p in [folder, *folder.parents] if p.exists()), Path("."))
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".harness-probe-"):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def _blocker(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is not a folder (nothing can be made below it)."""
    for parent in [path, *path.parents]:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def folder_problems(value: str | Path | None, option: str) -> list[Problem]:
    """``value`` is, or can become, a folder the harness can write into."""
    if value is None:
        return []
    path = Path(value)
    blocker = _blocker(path)
    if blocker is not None:
        what = "is a file" if blocker == path else f"is under {blocker}, which is a file"
        return [Problem(option, "", f"{path} {what}; expected a folder")]
    why = _probe(path)
    return [Problem(option, "", f"{path}: cannot write there ({why})")] if why else []


def file_problems(value: str | Path | None, option: str) -> list[Problem]:
    """``value`` can be written as a file (its folder made if missing)."""
    if value is None:
        return []
    path = Path(value)
    if path.is_dir():
        return [Problem(option, "", f"{path} is a folder; expected a file name")]
    return folder_problems(path.parent, option)


def new_folder_problems(value: str | Path, option: str) -> list[Problem]:
    """``value`` is a new or empty folder the harness can write into."""
    path = Path(value)
    if path.is_dir() and any(path.iterdir()):
        return [Problem(option, "", f"{path} is not empty; give a new or empty folder")]
    return folder_problems(path, option)
