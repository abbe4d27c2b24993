"""``-k EXPR`` as pytest reads it: ``and``, ``or``, ``not``, parentheses, and words that match a
candidate when they are a case-insensitive substring of one of its keywords (suite, model, loss,
candidate name, ``baseline``)."""

from __future__ import annotations

import re

from harness.errors import ConfigError

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def compile_k(expr: str):
    """Return ``match(keywords: list[str]) -> bool``; raise ConfigError on a malformed expression."""
    tokens = _TOKEN.findall(expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def parse_or():
        left = parse_and()
        while peek() == "or":
            take()
            right = parse_and()
            left = (lambda a, b: lambda kw: a(kw) or b(kw))(left, right)
        return left

    def parse_and():
        left = parse_not()
        while peek() == "and":
            take()
            right = parse_not()
            left = (lambda a, b: lambda kw: a(kw) and b(kw))(left, right)
        return left

    def parse_not():
        if peek() == "not":
            take()
            inner = parse_not()
            return lambda kw: not inner(kw)
        if peek() == "(":
            take()
            inner = parse_or()
            if take_if(")") is None:
                raise ConfigError(f"-k {expr!r}: expected ')'")
            return inner
        tok = peek()
        if tok is None or tok in ("and", "or", ")"):
            raise ConfigError(f"-k {expr!r}: expected a word at position {pos + 1}, got {tok or 'the end'}")
        take()
        word = tok.lower()
        return lambda kw: any(word in k.lower() for k in kw)

    def take_if(t):
        return take() if peek() == t else None

    if not tokens:
        return lambda kw: True
    matcher = parse_or()
    if pos != len(tokens):
        raise ConfigError(f"-k {expr!r}: unexpected {tokens[pos]!r}")
    return matcher
