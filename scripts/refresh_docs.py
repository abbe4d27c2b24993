"""Refresh the docs that show a run's output from one recorded run of the main job.

    HARNESS_DATA_DIR=../shared/data harness run suites/scifact.toml | tee scifact.log
    python scripts/refresh_docs.py --log scifact.log --results reports/scifact/latest/results.json

It keeps the run as ``docs/recorded/scifact-cpu.log`` and ``docs/recorded/scifact-cpu.results.json``
(the results without the per-query values, rankings and query texts), then writes from them, between
the ``recorded-run`` markers: the README's excerpt (the header with the CPU line, the data line, every
reference, one candidate in full and every other baseline and candidate by its result and
comparisons) and, in docs/results.md, the whole log and one candidate of results.json.
``--check`` writes nothing and exits 1 when a page differs from what the recorded run gives
(tests/test_docs_output.py runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "docs" / "recorded"
LOG, RESULTS = RECORDED / "scifact-cpu.log", RECORDED / "scifact-cpu.results.json"
README, RESULTS_PAGE = ROOT / "README.md", ROOT / "docs" / "results.md"
DROPPED = ("per_query", "rankings", "per_query_view", "traceback")
SAMPLE_KEYS = ("name", "base_model", "baseline", "status", "variant", "encoder", "metrics", "gates",
               "variants", "export_check", "training", "timings")  # fmt: skip
RESULT_LINE = re.compile(r"^(\S+::\S+) .*\b(PASSED|FAILED|ERROR|BASELINE|REFERENCE)\b")
OMITTED = "    ..."


def slim(doc: dict) -> dict:
    """results.json without what only a report needs (per-query values, rankings, query texts)."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in DROPPED}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(doc)


def blocks(lines: list[str]) -> tuple[list[str], list[tuple[str, list[str], list[str]]]]:
    """The log's header (up to the first item) and each item as (node id, its progress lines,
    its result line with the indented lines after it)."""
    header, items, progress, i = [], [], [], 0
    while i < len(lines) and not lines[i].endswith(" ... training") and " ... evaluating" not in lines[i]:
        if not RESULT_LINE.match(lines[i]):
            header.append(lines[i])
        i += 1
    head_refs = [line for line in lines[:i] if RESULT_LINE.match(line)]
    for line in lines[i:]:
        m = RESULT_LINE.match(line)
        if line.endswith(" ... training") or " ... evaluating" in line:
            progress = [line]
        elif m:
            items.append((m.group(1), progress, [line]))
            progress = []
        elif line.startswith("    ") and items and not progress:
            items[-1][2].append(line)
        elif line.startswith("    "):
            progress.append(line)
        elif line.strip():
            items.append(("", [], [line]))  # results: ..., the closing rule
    return header + head_refs, items


def excerpt(log: str, detail: str) -> list[str]:
    """The README's lines of ``log``: the header (warnings and cleaning aside), every reference, the
    candidate ``detail`` in full, every other item's result line and comparisons, and the close."""
    header, items = blocks(log.splitlines())
    out = [line for line in header if line and not line.startswith(("warning:", "    cleaning:"))]
    for nodeid, progress, result in items:
        if nodeid.endswith("::" + detail):
            out += first_trial_in_full(progress) + [
                line for line in result if not line.startswith("    warning:")
            ]
        elif nodeid:
            out += [result[0]] + [line for line in result[1:] if line.startswith("    vs ")]
            if len(result) > 1:
                out.append(OMITTED)
        else:
            out += result
    return out


TRIAL = re.compile(r"^    search trial (\d+)(/\d+: | pruned|: )")


def first_trial_in_full(progress: list[str]) -> list[str]:
    """A candidate's progress lines with a search's first trial in full and, of each later one, the
    line that starts it and the line with its outcome (``OMITTED`` for what it printed in between)."""
    out, trial = [], 0
    for line in progress:
        m = TRIAL.match(line)
        if m and m.group(2).startswith("/"):
            trial = int(m.group(1))
        elif line.startswith("    search: "):
            trial = 0  # the search's choice: what follows is the chosen model's
        if trial <= 1 or m or line.startswith("    search: "):
            out.append(line)
        elif out[-1] != OMITTED:
            out.append(OMITTED)
    return out


def sample(doc: dict, name: str) -> str:
    """Candidate ``name`` of results.json as docs/results.md shows it: its main keys, each nested
    object cut to a few entries (``"...": 0`` marks what was left out)."""
    cand = next(c for c in doc["candidates"] if c["name"] == name)

    def cut(value, depth: int):
        if isinstance(value, dict):
            keys = list(value)[: 6 if depth else 99]
            out = {k: cut(value[k], depth + 1) for k in keys}
            return out | ({"...": 0} if len(keys) < len(value) else {})
        if isinstance(value, list):
            return [cut(v, depth + 1) for v in value[:2]]
        return value

    shown = {k: cut(cand[k], 1) for k in SAMPLE_KEYS if k in cand}
    return json.dumps(shown, indent=1)


def replace_block(text: str, name: str, body: str, fence: str) -> str:
    start, end = f"<!-- recorded-run:{name}:start -->", f"<!-- recorded-run:{name}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"missing the markers {start} ... {end}")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n```{fence}\n{body.rstrip()}\n```\n{end}{after}"


def pages(log: str, doc: dict, detail: str) -> dict[Path, str]:
    readme = replace_block(README.read_text(), "excerpt", "\n".join(excerpt(log, detail)), "")
    page = replace_block(RESULTS_PAGE.read_text(), "log", log, "")
    page = replace_block(page, "candidate", sample(doc, detail), "json")
    return {README: readme, RESULTS_PAGE: page}


def best_candidate(doc: dict) -> str:
    """The shipped candidate of the run (its best passing one), else its first trained one."""
    trained = [c["name"] for c in doc["candidates"] if not c["baseline"]]
    return doc.get("shipped") or trained[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log", type=Path, help="the terminal output of a run (default: the recorded one)")
    ap.add_argument("--results", type=Path, help="its results.json (default: the recorded one)")
    ap.add_argument("--detail", help="the candidate shown in full (default: the run's shipped one)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page is stale")
    args = ap.parse_args(argv)
    if bool(args.log) != bool(args.results):
        ap.error("--log and --results come together (one run's)")
    log = (args.log or LOG).read_text()
    doc = slim(json.loads((args.results or RESULTS).read_text()))
    detail = args.detail or best_candidate(doc)
    wanted = pages(log, doc, detail)
    if args.log and not args.check:
        RECORDED.mkdir(exist_ok=True)
        LOG.write_text(log)
        RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
    stale = [p for p, text in wanted.items() if p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} differs from the recorded run: python scripts/refresh_docs.py")
        return 1 if stale else 0
    for p in stale:
        p.write_text(wanted[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
