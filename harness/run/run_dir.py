"""Run folders: claimed atomically at the start of a run (two runs started together into the same
``--out`` get two folders), and locked while a session uses them (a second ``--resume`` of a
folder in use is refused). The lock is an ``flock`` on ``.harness-lock`` in the folder: the kernel
drops it when the process ends, however it ends, so a killed run never leaves a stale lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

from harness.errors import ConfigError, Problem

LOCK = ".harness-lock"


def claim(suite_dir: Path, stamp: str) -> Path:
    """A new run folder ``suite_dir/<stamp>`` (or ``<stamp>-2``, ``-3``, ... when taken), created by
    this process and no other (``mkdir`` fails when the folder exists)."""
    suite_dir.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        folder = suite_dir / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


class RunLock:
    """The lock of run folder ``folder`` while this process uses it."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.fd: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not a POSIX system: no lock
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                Problem(
                    str(self.path),
                    "",
                    f"another harness run is using this run folder "
                    f"({self.holder()}); wait for it to finish, or run without --resume",
                )
            )
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": dt.datetime.now().isoformat(timespec="seconds"),
                }
            ).encode(),
        )
        self.fd = fd
        return self

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text())
            return f"pid {info['pid']} on {info['host']}, since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "its process is unknown"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None
