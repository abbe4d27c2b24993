"""Typed suite tables: how a key is declared (its default, help text and check), and the checker
that turns parsed TOML into those tables, naming the TOML path of every problem.

A table is a dataclass whose fields are declared with :func:`key`; :class:`Builder` converts a
parsed table into it, reporting every problem at once (unknown keys with a "did you mean", wrong
types, failed checks). Tables marked with ``EXTRA`` pass their other keys on to a plugin.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import field
from typing import Any

from harness.errors import Problem

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def key(default: Any = dataclasses.MISSING, help: str = "", check=None, choices=None):
    """Declare a suite key: its default, help text and an optional check returning an error text."""
    meta = {"help": help, "check": check, "choices": choices}
    if isinstance(default, type):  # a table class: an empty table of it
        return field(default_factory=default, metadata=meta)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def positive(v):
    return None if v > 0 else "expected a number > 0"


def tokens_or_auto(v):
    """A ``max_seq_length``: a number of tokens, or "auto" (resolved from the data before anything runs)."""
    if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v > 0):
        return None
    return 'expected a number of tokens > 0 or "auto"'


def non_negative(v):
    return None if v >= 0 else "expected a number >= 0"


def fraction(v):
    return None if 0 <= v < 1 else "expected a number in [0, 1)"


def fraction_or_one(v):
    return None if 0 <= v <= 1 else "expected a number in [0, 1]"


def a_name(v):
    return None if NAME_RE.match(v) else "expected a name of letters, digits, '_', '.', '-'"


def k_list(v):
    return None if v and all(k >= 1 for k in v) else "expected a non-empty list of integers >= 1"


INVALID = object()


def type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        item = typing.get_args(tp)[0]
        plural = {str: "strings", int: "integers", float: "numbers"}.get(item, "tables")
        return f"a list of {plural}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    if tp is list:
        return "a list"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        dict: "a table",
        type(None): "nothing",
    }.get(tp, str(tp))


class Builder:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def err(self, path: str, message: str) -> object:
        self.problems.append(Problem(self.file, path, message))
        return INVALID

    def convert(self, value: Any, tp: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if value is None:
                return None
            return self.convert(value, args[0], path) if len(args) == 1 else value
        if origin is list:
            (item_tp,) = typing.get_args(tp)
            if not isinstance(value, list):
                return self.err(path, f"expected {type_name(tp)}, got {describe(value)}")
            items = [self.convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
            return INVALID if any(i is INVALID for i in items) else items
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                return self.err(path, f"expected a table, got {describe(value)}")
            return self.table(tp, value, path)
        if tp is dict:
            return (
                value
                if isinstance(value, dict)
                else self.err(path, f"expected a table, got {describe(value)}")
            )
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if tp in (int, float, str, bool) and (type(value) is tp):
            return value
        return self.err(path, f"expected {type_name(tp)}, got {describe(value)}")

    def field(self, f: dataclasses.Field, tp, raw: Any, path: str) -> Any:
        """``raw`` as the value of key ``f`` (its type, choices and check), or INVALID (reported)."""
        value = self.convert(raw, tp, path)
        if value is INVALID:
            return value
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            return self.err(path, f"expected one of {', '.join(map(repr, choices))}, got {value!r}")
        check = f.metadata.get("check")
        msg = check(value) if check and value is not None else None
        return self.err(path, f"{msg}, got {value!r}") if msg else value

    def table(self, cls, raw: dict, path: str):
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        extra_field = getattr(cls, "EXTRA", None)
        known = [n for n in fields if n != extra_field]
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in raw.items():
            sub = f"{path}.{k}" if path else k
            if k not in known:
                close = difflib.get_close_matches(k, known, n=1, cutoff=0.8)
                if extra_field and not close:
                    extra[k] = v  # a plugin's own option, checked once plugins are loaded
                else:
                    self.err(sub, f"unknown key{did_you_mean(k, known)}")
                continue
            value = self.field(fields[k], hints[k], v, sub)
            if value is not INVALID:
                values[k] = value
        for name, f in fields.items():
            if name == extra_field or name in raw:
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.err(
                    f"{path}.{name}" if path else name, f"missing required key ({type_name(hints[name])})"
                )
        if extra_field:
            values[extra_field] = extra
        try:
            obj = cls(**values)
        except TypeError:  # a required key was missing or invalid: already reported
            return INVALID
        for sub, message in obj.problems() if hasattr(obj, "problems") else ():
            self.err(f"{path}{sub}", message)
        return obj


def check_field(cls, name: str, value: Any) -> str | None:
    """The error text for ``value`` as key ``name`` of table ``cls`` (type, choices and check), or None."""
    b = Builder("")
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return (
        b.problems[0].message
        if b.field(f, typing.get_type_hints(cls)[name], value, name) is INVALID
        else None
    )


def did_you_mean(word: str, candidates) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(sorted(candidates))}"


def describe(value: Any) -> str:
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} ({text if len(text) < 40 else text[:37] + '...'})"
