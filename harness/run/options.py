"""The options of a run, typed and fixed at the start (the command line's, or a test's): the
session, the pipeline and every executor read these fields, never the argparse namespace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunOptions:
    device: str = "cpu"  #: resolved: "cpu" or "cuda"
    out_dir: Path = Path("reports")
    exitfirst: bool = False  #: -x: stop at the first failed or errored candidate
    resume: bool = False  #: continue each suite's newest run, re-using finished steps
    no_cache: bool = False  #: re-evaluate untuned baselines even when an identical evaluation is cached
    quiet: bool = False  #: no progress bars
    plugins: tuple[str, ...] = ()  #: -p options, for other processes to load the same plugins

    @property
    def progress_bars(self) -> bool:
        import sys

        return sys.stderr.isatty() and not self.quiet
