"""Plugin discovery and the registries that hooks fill.

Load order: built-ins (``harness/builtin``), then installed packages through the entry-point
group ``harness``, then the local files or modules a suite names in ``[suite].plugins``. A
plugin's ``harness_*`` functions must match a hook in :mod:`harness.hookspecs`, else loading fails.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from harness import hookspecs
from harness.api import Evaluator, LossSpec, PairSource, ResolvedModel
from harness.errors import ConfigError, DataError, Problem
from harness.suite.keys import did_you_mean

BUILTIN_PLUGINS = (
    "harness.builtin.beir",
    "harness.builtin.jsonl",
    "harness.builtin.pairs",
    "harness.builtin.clicks",
    "harness.builtin.unlabeled",
    "harness.builtin.querygen",
    "harness.builtin.retrieval",
    "harness.builtin.losses",
    "harness.builtin.models",
    "harness.builtin.terminal",
)


class _Manager(pluggy.PluginManager):
    def parse_hookimpl_opts(self, plugin, name):
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("harness_"):
            # like pytest's prefix rule: a harness_* function is a hook implementation, so a
            # misspelled one fails check_pending() instead of being ignored
            obj = getattr(plugin, name, None)
            if callable(obj):
                return {}
        return opts


@dataclass
class Registry:
    """What the plugins registered, and which plugin registered each thing."""

    pair_sources: dict[str, PairSource] = field(default_factory=dict)
    evaluators: dict[str, Evaluator] = field(default_factory=dict)
    losses: dict[str, LossSpec] = field(default_factory=dict)
    owner: dict[tuple[str, str], str] = field(default_factory=dict)


def _option_clash(source: PairSource) -> str:
    """Why a pair source's option names cannot work in ``[data]`` beside the harness's own keys: the
    same name, or one so close that a suite's typo of a harness key would pass as the option."""
    import dataclasses
    import difflib

    from harness.suite.schema import DataTable

    own = [f.name for f in dataclasses.fields(DataTable) if f.name != DataTable.EXTRA]
    for option in getattr(source, "options", {}):
        close = difflib.get_close_matches(option, own, n=1, cutoff=0.8)
        if close:
            what = "is" if close[0] == option else "is too close to"
            return (
                f"option {option!r} {what} the harness key data.{close[0]}; a suite could not tell them "
                "apart: "
                "rename the option"
            )
    return ""


def from_command_line(specs: list[str] | tuple[str, ...], cwd: Path, quiet: bool = False) -> "Plugins":
    """The plugins of a command line's ``-p`` options (``-p no:NAME`` blocks one), loaded relative to
    ``cwd``; the same call rebuilds them in a Ray worker or a torchrun process. ``quiet`` blocks the
    terminal reporter (only the driver prints)."""
    blocked = tuple(s[3:] for s in specs if s.startswith("no:")) + (("terminal",) if quiet else ())
    plugins = Plugins(blocked=blocked)
    for spec in (s for s in specs if not s.startswith("no:")):
        plugins.load_plugin(spec, cwd, "command line", f"-p {spec}")
    return plugins


class Plugins:
    """The plugin manager plus the registries, built once per command."""

    def __init__(self, load_entry_points: bool = True, blocked: tuple[str, ...] = ()):
        self.pm = _Manager("harness")
        self.pm.add_hookspecs(hookspecs)
        for name in blocked:
            self.pm.set_blocked(name)
        for modname in BUILTIN_PLUGINS:
            self._register(importlib.import_module(modname), modname.rsplit(".", 1)[-1], "built-in")
        if load_entry_points:
            try:
                self.pm.load_setuptools_entrypoints("harness")
            except pluggy.PluginValidationError as e:
                raise ConfigError(f"entry-point plugin {e.plugin!r}: {e}")
        self.origins: dict[str, str] = {
            n: "built-in" for n in (m.rsplit(".", 1)[-1] for m in BUILTIN_PLUGINS)
        }
        for name, _ in self.pm.list_name_plugin():
            self.origins.setdefault(name, "entry point")
        self.registry = Registry()
        self._refresh()

    @property
    def hook(self):
        return self.pm.hook

    def resolve_model(self, name: str, revision: str | None = None) -> ResolvedModel:
        """A model name to a local folder through the ``harness_resolve_model`` hook; DataError if no
        resolver has it, listing why each resolver did not."""
        misses: list = []
        resolved = self.hook.harness_resolve_model(name=name, revision=revision, misses=misses)
        if resolved is None:
            at = f" at revision {revision!r}" if revision else ""
            why = "".join(f"\n  {m.resolver} ({m.kind}): {m.detail}" for m in misses)
            raise DataError(f"model {name!r}{at} not found by any resolver:{why or ' none said why'}")
        return resolved

    def _register(self, module, name: str, origin: str, file: str = "", path: str = "") -> None:
        if self.pm.is_blocked(name) or self.pm.has_plugin(name):
            return
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as e:
            self.pm.unregister(module)
            known = [h for h in dir(hookspecs) if h.startswith("harness_")]
            bad = [n for n in dir(module) if n.startswith("harness_") and n not in known]
            hint = f": {bad[0]!r} is not a hook{did_you_mean(bad[0], known)}" if bad else f": {e}"
            raise ConfigError(Problem(file or name, path, f"plugin {name!r}{hint}"))

    def load_suite_plugins(self, suite) -> None:
        """Load ``[suite].plugins`` of ``suite``; raise ConfigError listing every failure."""
        problems = []
        for i, spec in enumerate(suite.suite.plugins):
            try:
                self.load_plugin(spec, suite.path.parent, str(suite.path), f"suite.plugins[{i}]")
            except ConfigError as e:
                problems.extend(e.problems)
        if problems:
            raise ConfigError(problems)

    def load_plugin(self, spec: str, base_dir: Path, file: str = "", path: str = "") -> None:
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            p = (base_dir / spec).resolve()
            if not p.is_file():
                raise ConfigError(Problem(file, path, f"plugin file {str(p)!r} does not exist"))
            name = f"local:{p}"
            if self.pm.has_plugin(name):
                return
            modname = f"harness_local_{p.stem}_{abs(hash(str(p))):x}"
            try:
                module_spec = importlib.util.spec_from_file_location(modname, p)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[modname] = module
                module_spec.loader.exec_module(module)
            except Exception as e:  # noqa: BLE001 - any import failure is a config problem
                sys.modules.pop(modname, None)
                raise ConfigError(
                    Problem(file, path, f"plugin file {str(p)!r} does not import: {type(e).__name__}: {e}")
                )
            self._register(module, name, "local file", file, path)
            self.origins[name] = "local file"
        else:
            if self.pm.has_plugin(spec):
                return
            try:
                module = importlib.import_module(spec)
            except Exception as e:  # noqa: BLE001
                raise ConfigError(
                    Problem(file, path, f"plugin module {spec!r} does not import: {type(e).__name__}: {e}")
                )
            self._register(module, spec, "module", file, path)
            self.origins[spec] = "module"
        try:
            self._refresh()
        except ConfigError:
            self.pm.unregister(module)
            self._refresh()
            raise

    def _refresh(self) -> None:
        """(Re)build the registries by calling each plugin's registration hooks, recording owners."""
        reg = Registry()
        problems: list[str] = []
        for hookname, table in (
            ("harness_register_pair_sources", reg.pair_sources),
            ("harness_register_evaluators", reg.evaluators),
            ("harness_register_losses", reg.losses),
        ):
            kind = hookname.removeprefix("harness_register_")
            for impl in getattr(self.pm.hook, hookname).get_hookimpls():  # in load order

                def register(obj, _table=table, _kind=kind, _plugin=impl.plugin_name):
                    name = getattr(obj, "name", "")
                    if not name:
                        problems.append(f"plugin {_plugin!r} registered {_kind[:-1]} {obj!r} without a name")
                    elif _kind == "pair_sources" and (clash := _option_clash(obj)):
                        problems.append(f"plugin {_plugin!r}: pair source {name!r} {clash}")
                    elif name in _table:
                        other = reg.owner[(_kind, name)]
                        problems.append(
                            f"{_kind[:-1].replace('_', ' ')} {name!r} is registered by both {other!r} and "
                            f"{_plugin!r}"
                        )
                    else:
                        _table[name] = obj
                        reg.owner[(_kind, name)] = _plugin

                impl.function(**({"register": register} if "register" in impl.argnames else {}))
        if problems:
            raise ConfigError([Problem("", "", p) for p in problems])
        self.registry = reg

    def describe(self) -> list[dict[str, Any]]:
        """One entry per plugin: name, origin, hooks it implements, what it registered."""
        out = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = sorted({h.name for h in self.pm.get_hookcallers(plugin) or []})
            provides = {
                kind: sorted(
                    n for (k, n), owner in self.registry.owner.items() if k == kind and owner == name
                )
                for kind in ("pair_sources", "evaluators", "losses")
            }
            out.append(
                {
                    "name": name,
                    "origin": self.origins.get(name, "?"),
                    "hooks": hooks,
                    "provides": {k: v for k, v in provides.items() if v},
                }
            )
        return out
