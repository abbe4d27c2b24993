"""The package's shape: no import cycle in ``harness/`` (imports inside functions included), heavy
libraries imported only inside functions, the plugin API is ``harness.api`` alone, and files and
classes small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "harness"
HEAVY = ("torch", "sentence_transformers", "transformers", "onnxruntime", "optimum", "ray", "playwright")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (annotations, never imported)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in (
                "TYPE_CHECKING",
                "typing.TYPE_CHECKING",
            ):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def imported(path: Path, known: set[str]) -> set[str]:
    """Every harness module ``path`` imports, at the top or inside a function (``from x import y``
    counts ``x.y`` when that is a module, else ``x``); ``if TYPE_CHECKING:`` blocks do not count."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                if f"{mod}.{a.name}" in known:
                    out.add(f"{mod}.{a.name}")
                elif mod in known:
                    out.add(mod)
    out.discard(here)
    return out


#: The layers of the package, lowest first: a module may import its own folder and the layers below
#: it, never one above. ``core`` and the root modules serve everyone; the phases follow in the order
#: they depend on each other; the built-in plugins use the phases; the conductor (``run``) drives them
#: all, and the command line sits on top. A name is a folder of ``harness/`` or a root module.
LAYERS = [
    {"harness", "core", "errors", "exitcodes", "results", "outputs"},
    {"api"},
    {"hookspecs"},
    {"suite"},
    {"plugins"},
    {"data"},
    {"encode"},
    {"export"},
    {"gate"},
    {"evaluate"},
    {"train"},
    {"report"},
    {"ship"},
    {"monitor"},
    {"builtin"},
    {"run"},
    {"cli", "__main__"},
]
PHASES = ("suite", "data", "train", "export", "encode", "evaluate", "gate", "report", "ship", "monitor")


def part(module: str) -> str:
    """The folder of ``harness/`` (or the root module) that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "harness"


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """The imports of ``graph`` (module -> modules) that go from a layer to one above it."""
    return sorted(
        f"{m} -> {n}"
        for m, targets in graph.items()
        for n in targets
        if part(n) != part(m) and layer(part(n)) > layer(part(m))
    )


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imported(p, set(mods)) - {"harness"} for m, p in mods.items()}


def test_every_folder_and_root_module_has_a_layer():
    names = {part(m) for m in modules()}
    unplaced = sorted(n for n in names if not any(n in layer_ for layer_ in LAYERS))
    assert not unplaced, f"give these a place in LAYERS: {unplaced}"
    assert set(PHASES) <= names


def test_no_module_imports_a_layer_above_its_own():
    bad = upward_imports(import_graph())
    assert not bad, (
        "imports of a layer above (move the shared part down, e.g. to harness/core):\n" + "\n".join(bad)
    )


def test_no_phase_imports_the_conductor_or_the_command_line():
    graph = import_graph()
    bad = sorted(
        f"{m} -> {n}"
        for m, targets in graph.items()
        if part(m) in PHASES
        for n in targets
        if part(n) in ("run", "cli", "builtin")
    )
    assert not bad, "\n".join(bad)


def test_the_layer_check_fails_on_a_planted_upward_import():
    planted = {
        "harness.data.prepare": {"harness.run.session"},
        "harness.core.records": {"harness.suite.schema"},
        "harness.export.variants": {"harness.encode.encoder"},
    }
    assert upward_imports(planted) == [
        "harness.core.records -> harness.suite.schema",
        "harness.data.prepare -> harness.run.session",
    ]


def test_no_import_cycle_between_folders():
    folders: dict[str, set[str]] = {}
    for m, targets in import_graph().items():
        folders.setdefault(part(m), set()).update(part(n) for n in targets if part(n) != part(m))
    cycles = []

    def visit(f: str, stack: list[str]) -> None:
        for g in sorted(folders.get(f, ())):
            if g in stack:
                cycles.append(" -> ".join(stack[stack.index(g) :] + [g]))
            elif len(stack) < len(folders):
                visit(g, stack + [g])

    for f in sorted(folders):
        visit(f, [f])
    assert not cycles, "import cycles between folders:\n" + "\n".join(sorted(set(cycles)))


def test_no_import_cycle():
    mods = modules()
    graph = {m: imported(p, set(mods)) - {"harness"} for m, p in mods.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n) :] + [m, n]) if n in stack else f"{m} -> {n}")
            elif n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_heavy_libraries_only_inside_functions():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:  # top-level statements only
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            )
            bad += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in HEAVY]
    assert not bad, "heavy imports at module level:\n" + "\n".join(bad)


def test_the_command_loads_no_heavy_library():
    code = (
        "import sys, harness.cli; from harness.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_plugins_import_only_the_api():
    files = sorted((ROOT / "plugins").glob("*.py")) + [ROOT / "docs" / "plugin_template.py"]
    bad = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            )
            for m in mods:
                if m.split(".")[0] == "harness" and m not in ("harness", "harness.api"):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {m}")
                if m == "harness" and isinstance(node, ast.ImportFrom):
                    bad += [
                        f"{path.relative_to(ROOT)}:{node.lineno}: harness.{a.name}"
                        for a in node.names
                        if a.name != "hookimpl"
                    ]
    assert not bad, "plugins may import harness.api and harness.hookimpl only:\n" + "\n".join(bad)


def test_files_and_classes_stay_small():
    big = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > 400:
            big.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 200:
                big.append(
                    f"{path.relative_to(ROOT)}: class {node.name} {node.end_lineno - node.lineno + 1} lines"
                )
    assert not big, "\n".join(big)


def test_phase_folders():
    phases = [
        p.name
        for p in PACKAGE.iterdir()
        if p.is_dir() and (p / "__init__.py").is_file() and p.name != "builtin"
    ]
    assert len(phases) >= 6, phases


def test_the_suite_keys_page_is_generated_from_the_schema():
    from harness.suite.load import keys_document

    page = (ROOT / "docs" / "suite-keys.md").read_text()
    assert page == keys_document(), (
        "docs/suite-keys.md is stale: python -m harness.suite.load > docs/suite-keys.md"
    )


def test_the_readme_is_a_guide():
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 300
    head = "\n".join(readme[:40])
    for command in ("pip install", "harness run suites/", "python -m pytest"):
        assert command in head, command


def test_every_local_link_of_the_guides_points_at_a_file():
    import re

    for page in [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "benchmarks" / "RESULTS.md",
    ]:
        for target in re.findall(r"\]\(([^)]+)\)", page.read_text()):
            if not target.startswith(("http", "#")):
                assert (page.parent / target.split("#")[0]).exists(), f"{page.relative_to(ROOT)}: {target}"
