"""What one suite's run holds while it goes on: its items, its folder, the prepared data, the
resolved base models and the results so far. The phases read it (a worker builds one of its own
for the item it runs); only the session adds results to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.names import Status

if TYPE_CHECKING:  # annotations only: the phases import this module, it imports none of them
    from harness.api import ResolvedModel
    from harness.data.prepare import Prepared
    from harness.results import CandidateResult
    from harness.suite.collect import Item
    from harness.suite.schema import Suite


@dataclass
class SuiteRun:
    suite: Suite
    items: list[Item]
    run_dir: Path
    data: Prepared | None = None
    models: dict[str, ResolvedModel] = field(default_factory=dict)
    results: dict[str, CandidateResult] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)  #: results of the run being resumed, by name
    load_error: str | None = None  #: a pair source that crashed: every item of the suite errors with it
    out_of_domain: dict[str, Prepared] = field(
        default_factory=dict
    )  #: other suites' data, by out_of_domain name
    references: dict[str, Any] = field(default_factory=dict)  #: the suite's bm25 references' results, by name
    new: bool = True  #: this session created the run folder (not --resume)
    max_seq_length_auto: dict | None = None  #: how ``max_seq_length = "auto"`` was resolved
    lock: Any = None  #: the run folder's :class:`harness.run.run_dir.RunLock` while the session uses it

    def trained_model(self, name: str, key: str, hint: str) -> Path:
        """The trained model folder of candidate ``name``, finished earlier in this run; else a
        CandidateError saying so for the suite key ``key`` that names it, with ``hint``."""
        from harness.errors import CandidateError

        done = self.results.get(name)
        if not done or done.get("status") in (Status.ERROR, Status.INTERRUPTED) or "model_dir" not in done:
            raise CandidateError(
                f"{key} = {name!r}: that candidate has not been trained in this run ({hint})"
            )
        return self.run_dir / "models" / name / done["model_dir"] / "trained"
