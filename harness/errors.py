"""The harness's own exceptions. Everything a user can cause is one of these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem in a configuration: the file, the TOML path of the key, and what was expected."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(x for x in (self.file, self.path) if x)
        return f"{where}: {self.message}" if where else self.message


class HarnessError(Exception):
    """Base class of the errors the harness reports without a traceback."""


class ConfigError(HarnessError):
    """One or more problems in suite files, plugins or the command line (exit code 4)."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("", "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DataError(HarnessError):
    """Data that a pair source could not read or that does not make a valid retrieval task.

    ``messages``: every problem found, when there were several (the text joins them)."""

    def __init__(self, message: str | list[str]):
        self.messages = [message] if isinstance(message, str) else list(message)
        super().__init__("; ".join(self.messages))


class CandidateError(HarnessError):
    """A candidate could not be trained, exported or evaluated; the other candidates go on."""
