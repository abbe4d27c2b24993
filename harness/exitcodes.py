"""Exit codes of the ``harness`` command. They are API: release pipelines gate on them."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  #: every candidate ran and every gate passed
    GATES_FAILED = 1  #: a gate failed or a candidate errored
    INTERRUPTED = 2  #: the run was interrupted (Ctrl-C, SIGTERM); partial results were written
    INTERNAL_ERROR = 3  #: a bug in the harness or a plugin outside a candidate
    USAGE_ERROR = 4  #: bad command line, suite file, plugin or data; nothing was trained
    NO_CANDIDATES = 5  #: no suite or candidate was collected (empty folder, -k matched nothing)
