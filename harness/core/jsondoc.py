"""JSON documents the harness wrote and reads back (results.json, ``harness ab`` and ``harness
drift`` outputs): decoded and checked against their schema, every problem a ConfigError (exit 4)
that names the file, where in it, and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import ConfigError, Problem


def load_json(file: Path, missing: str = "no such file"):
    """The decoded content of ``file``; a missing, non-UTF-8 or truncated file raises ConfigError."""
    file = Path(file)
    if not file.is_file():
        raise ConfigError(Problem(str(file), "", missing))
    try:
        return json.loads(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(Problem(str(file), "", f"not UTF-8 text (byte {e.start})")) from None
    except json.JSONDecodeError as e:
        raise ConfigError(
            Problem(
                str(file),
                f"line {e.lineno} column {e.colno}",
                f"not valid JSON ({e.msg}): truncated or damaged",
            )
        ) from None
    except (RecursionError, OSError) as e:
        raise ConfigError(Problem(str(file), "", f"cannot be read as JSON ({type(e).__name__})")) from None


def check_schema(doc, schema: Path, file: Path, hint: str) -> None:
    """Raise ConfigError naming (up to five of) the places where ``doc``, read from ``file``, breaks
    the JSON schema in file ``schema``; ``hint`` says what the file should have been."""
    from jsonschema import Draft202012Validator

    errors = sorted(
        Draft202012Validator(json.loads(Path(schema).read_text())).iter_errors(doc),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if errors:
        raise ConfigError(
            [
                Problem(
                    str(file), "/".join(map(str, e.absolute_path)) or "(top)", f"{e.message[:200]} ({hint})"
                )
                for e in errors[:5]
            ]
        )
