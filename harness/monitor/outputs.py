"""The JSON that ``harness ab`` and ``harness drift`` write, read back and checked against its
schema (``ab.schema.json``, ``drift.schema.json`` beside this module), for the report's
after-shipping section."""

from __future__ import annotations

from pathlib import Path

from harness.errors import ConfigError, Problem

HERE = Path(__file__).parent
KINDS = {"ab": "ab", "interleaved": "ab", "simulation": "ab", "drift": "drift"}  #: kind -> schema
COMMANDS = {"ab": "harness ab --json", "drift": "harness drift --json"}


def read_output(file: Path, command: str) -> dict:
    """The output of ``command`` (``ab`` or ``drift``) in ``file``; anything else (another command's
    output, a damaged or hand-edited file) raises ConfigError naming the file and where."""
    from harness.core.jsondoc import check_schema, load_json

    file = Path(file)
    doc = load_json(file, f"no such file (expected the output of `{COMMANDS[command]}`)")
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if KINDS.get(kind) != command:
        found = f"the output of `{COMMANDS[KINDS[kind]]}`" if kind in KINDS else "no known 'kind'"
        raise ConfigError(
            Problem(str(file), "kind", f"holds {found}, not of `{COMMANDS[command]}` (kind {kind!r})")
        )
    check_schema(doc, HERE / f"{command}.schema.json", file, f"not what `{COMMANDS[command]}` writes")
    return doc
