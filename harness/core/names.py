"""The names the harness writes and plugins read, declared once: a candidate's status, the stages of
its progress, the export variants and the ways a test split can be grouped.

Each is a ``str`` enumeration, so a member *is* its string: it compares equal to it, hashes like it,
and ``json`` writes it as it. Plugins and old ``results.json`` files that use the plain strings keep
working; code in the harness names the member instead of spelling the string out.
"""

from __future__ import annotations

from enum import Enum


class Name(str, Enum):
    """A declared name: ``str(x)`` and ``f"{x}"`` are its value (as ``enum.StrEnum`` on Python 3.11+)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class Status(Name):
    """A baseline's or candidate's outcome (``results.json`` ``candidates[].status``)."""

    PASSED = "passed"  #: evaluated, and (a candidate) every gate passed
    FAILED = "failed"  #: a gate failed
    ERROR = "error"  #: it could not be trained, exported or evaluated (``error`` says why)
    INTERRUPTED = "interrupted"  #: Ctrl-C or SIGTERM while it ran: what it had is kept


class Stage(Name):
    """The ``stage`` of ``harness_candidate_progress`` (what ``info`` holds: :mod:`harness.hookspecs`)."""

    EPOCH = "epoch"
    RESUMED = "resumed"
    MINED = "mined"
    STUDENT = "student"
    DISTILLED = "distilled"
    TRIAL = "trial"
    TRIAL_END = "trial_end"
    CHOSEN = "chosen"
    SEED = "seed"
    REFIT = "refit"
    CURVE = "curve"
    MEMORY = "memory"
    TRAINED = "trained"
    EXPORTED = "exported"
    EVALUATED = "evaluated"


class VariantName(Name):
    """An export variant (what each is and where it runs: :mod:`harness.core.variants`)."""

    FP32 = "fp32"
    O1 = "O1"
    O2 = "O2"
    O3 = "O3"
    FP16 = "fp16"
    INT8 = "int8"
    OPENVINO_INT8 = "openvino-int8"


class GroupBy(Name):
    """``data.group_by``: what the made test split keeps together (:mod:`harness.data.split`)."""

    COMPONENT = "component"  #: queries that share a relevant document, transitively
    QUERY = "query"  #: each query on its own


def hybrid_name(dense: str, ref, suite) -> str:
    """``<dense>+<bm25 reference>``; with two hybrids of one bm25 reference, ``<dense>+<hybrid name>``."""
    same = [r for r in suite.references if r.type == "hybrid" and r.of == ref.of]
    return f"{dense}+{ref.of if len(same) == 1 else ref.name}"
