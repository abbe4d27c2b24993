"""Collection: suite files from the command line's paths, loaded and checked, and the items they
declare (one untuned baseline per base model, one candidate per model x loss), selected by ``-k``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, Problem
from harness.suite.keyword import compile_k
from harness.suite.schema import ReferenceTable, Suite, item_name
from harness.suite.training_tables import LossTable, ModelTable


@dataclass
class Item:
    """One baseline, candidate or model reference of one suite."""

    suite: Suite
    model: ModelTable
    loss: LossTable | None  #: ``None`` for the untuned baseline (and a model reference)
    reference: ReferenceTable | None = None  #: a ``type = "model"`` reference: evaluated untuned, never gated
    searched: tuple[str, ...] = ()  #: the losses its ``[search]`` chooses among (``loss`` is the first)
    fused: str | None = (
        None  #: a hybrid row's name: this item's model fused with BM25 (harness/gate/hybrids.py)
    )

    @classmethod
    def for_reference(cls, suite: Suite, ref: ReferenceTable) -> Item:
        model = ModelTable(
            name=ref.name,
            base=ref.model,
            revision=ref.revision,
            query_prompt=ref.query_prompt,
            document_prompt=ref.document_prompt,
        )
        return cls(suite, model, None, ref)

    @property
    def untuned(self) -> bool:
        """Evaluated as it is, through its export: a baseline or a model reference."""
        return self.loss is None

    @property
    def baseline(self) -> bool:
        return self.loss is None and self.reference is None and self.fused is None

    @property
    def name(self) -> str:
        if self.fused is not None:
            return self.fused
        if self.reference is not None:
            return self.reference.name
        return item_name(self.model, self.loss, self.searched)

    @property
    def nodeid(self) -> str:
        return f"{self.suite.name}::{self.name}"

    @property
    def keywords(self) -> list[str]:
        kw = [self.suite.name, self.model.name, self.name, self.nodeid]
        if self.reference is not None:
            return kw + ["reference"]
        if self.loss is None:
            return kw + ["baseline"]
        if self.searched:
            losses = [x for x in self.suite.losses if x.name in self.searched]
            return kw + ["search", *self.searched, *{x.type for x in losses}]
        return kw + [self.loss.name, self.loss.type]


def collect_suite_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths or ["suites"]):
        if p.is_dir():
            files += sorted(f for f in p.glob("*.toml") if not f.name.startswith("_"))
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(Problem(str(p), "", "no such suite file or folder"))
    return files


def load_suites(
    files: list[Path], plugins, profile: str | None, device: str | None, overrides: list | None = None
) -> list[Suite]:
    """Load, type-check and plugin-check every suite, raising one ConfigError with every problem.
    ``plugins``: a :class:`harness.plugins.Plugins` (a suite's own plugins are loaded into it);
    ``overrides``: ``--set`` values (:func:`harness.suite.load.parse_overrides`), over every suite."""
    from harness.suite.load import load_suite
    from harness.suite.validate import check_suite

    suites, problems = [], []
    for f in files:
        try:
            suite = load_suite(f, profile, device, overrides)
            plugins.load_suite_plugins(suite)
        except ConfigError as e:
            problems += e.problems
            continue
        problems += check_suite(suite, plugins.registry)
        suites.append(suite)
    names = [s.name for s in suites]
    for s in suites:
        if names.count(s.name) > 1:
            problems.append(Problem(str(s.path), "suite.name", f"another suite is also named {s.name!r}"))
    if problems:
        raise ConfigError(problems)
    return suites


def collect_items(suites: list[Suite], keyword: str | None) -> list[Item]:
    match = compile_k(keyword or "")
    items = []
    for suite in suites:
        start = len(items)
        for model in suite.models:
            cands = [Item(suite, model, loss, searched=s) for loss, s in suite.candidate_losses()]
            cands = [c for c in cands if match(c.keywords)]
            base = Item(suite, model, None)
            # a selected candidate needs its baseline (gains are measured against it)
            if cands or match(base.keywords):
                items.append(base)
            items += cands
        if (
            len(items) > start
        ):  # the suite's model references come first: every candidate is judged against them
            items[start:start] = [Item.for_reference(suite, r) for r in suite.references if r.type == "model"]
    return items
