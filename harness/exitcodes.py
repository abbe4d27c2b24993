"""Exit codes of the ``harness`` command. They are API: release pipelines gate on them."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    GATES_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NO_CANDIDATES = 5

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


#: what each code means, as ``harness --help`` and the README print it
MEANINGS = {
    ExitCode.OK: "every candidate ran and every gate passed",
    ExitCode.GATES_FAILED: "a gate failed or a candidate errored (the other candidates still ran); `release` "
    "refused a failed candidate; `encode --check` found another model's embeddings",
    ExitCode.INTERRUPTED: "Ctrl-C or SIGTERM; the results so far were written",
    ExitCode.INTERNAL_ERROR: "a bug in the harness or a plugin (traceback printed)",
    ExitCode.USAGE_ERROR: "bad command line, suite, plugin, data or model name; every problem is listed, "
    "nothing was trained",
    ExitCode.NO_CANDIDATES: "nothing collected: no suite files, or `-k` matched nothing",
}
