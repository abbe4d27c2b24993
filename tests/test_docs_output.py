"""The pages that show a run's output tell the truth: they come from one recorded run of the main
job (docs/recorded/, refreshed by scripts/refresh_docs.py), that run has every candidate, baseline
and reference of suites/scifact.toml, and each of its lines has the shape the current code prints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from .conftest import HYBRID_REFERENCES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LOG = ROOT / "docs" / "recorded" / "scifact-cpu.log"


def excerpt_lines() -> list[str]:
    text = README.read_text()
    block = text.split("<!-- recorded-run:excerpt:start -->", 1)[1].split(
        "<!-- recorded-run:excerpt:end -->"
    )[0]
    return [line for line in block.strip().strip("`").strip("\n").splitlines() if line]


def test_one_results_schema_in_the_repository():
    found = sorted(
        p.relative_to(ROOT).as_posix() for p in ROOT.rglob("results.schema.json") if ".git" not in p.parts
    )
    assert found == ["harness/report/results.schema.json"], found


def test_the_pages_are_what_the_recorded_run_gives():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "refresh_docs.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_excerpt_lines_are_lines_of_the_recorded_log_in_order():
    log = iter(LOG.read_text().splitlines())
    for line in excerpt_lines():
        if line != "    ...":
            assert any(line == other for other in log), f"not in the recorded log (in order): {line!r}"


def test_the_recorded_run_is_the_current_main_job(run_cli):
    code, out = run_cli("run", str(ROOT / "suites" / "scifact.toml"), "--collect-only", "--device", "cpu")
    assert code == 0, out
    nodeids = re.findall(r"<(?:Baseline|Candidate)[^>]* (scifact::\S+)>", out)
    references = re.findall(r"<Reference (\S+) type=(\S+)>", out)
    assert nodeids and references, out
    lines = excerpt_lines()
    results = {m.group(1) for m in map(re.compile(r"^(\S+::\S+) \S+=").match, lines) if m}
    for name, kind in references:
        if kind == "hybrid":  # fused with each model's ranking: each candidate is compared with it
            assert any(line.startswith(f"    vs {name} of the untuned baseline:") for line in lines), name
        else:
            assert f"scifact::{name}" in results, name
    assert set(nodeids) <= results, sorted(set(nodeids) - results)
    assert any(line.startswith("cpu ") and "(speeds are this machine's)" in line for line in lines)
    assert lines[-1].startswith("=") and "(exit " in lines[-1]


# --- the shape of every line, against what the current code prints -------------------------------

#: (a diagnosis says what its signals found and calls for: tests/test_diagnosis.py has each case)
DATA_DEPENDENT = ("warning:", "    cleaning:", "scifact: data:", "results: ", "    ...", "    diagnosis:")
SUGGESTION = re.compile(r"^      \d+\. try ")


def shape(line: str) -> str:
    """A line with what varies from run to run masked: numbers, durations, lists, verdicts, outcomes."""
    line = re.sub(r"output \S+", "output <dir>", line)
    line = re.sub(r"^cpu .*\(speeds", "cpu <cpu> (speeds", line)
    line = re.sub(r"\[\d[\d, ]*\]", "[<list>]", line)
    line = re.sub(r"\b\d+m\d+s\b|\b\d+(\.\d+)?s\b", "<t>", line)
    line = re.sub(r"(\d) (KiB|MiB|GiB|TiB)\b", r"\1 <unit>", line)  # a tiny model's memory is MiB
    line = re.sub(r"\bloss=[\w-]+", "loss=<name>", line)  # the loss a search chose
    line = re.sub(r"\bfusion (rrf k|weighted dense)=", "fusion <fusion>=", line)  # as dev chose it
    line = re.sub(r"[+-]?\d+(\.\d+)?(e[+-]?\d+)?%?", "#", line)
    line = re.sub(r"\b(better|worse|not distinguishable)\b", "<verdict>", line)
    line = re.sub(r"\b(PASSED|FAILED)\b", "<status>", line)
    line = re.sub(r"^    (ok  |FAIL) ", "    <gate> ", line)
    return re.sub(r"=+ (.*) =+$", r"== \1 ==", line)


def segments(line: str) -> tuple[str, set[str]]:
    parts = shape(line).split("; ")
    return parts[0], set(parts[1:])


def test_shape_masks_what_varies_and_keeps_what_does_not():
    a = "    vs bm25: -0.0054 [-0.0404, +0.0287] p=0.7566 (not distinguishable; 67 queries better, 68 worse)"
    b = "    vs bm25: +0.1200 [+0.0100, +0.2000] p=0.0001 (better; 3 queries better, 1 worse)"
    assert shape(a) == shape(b)
    assert shape("    trained on 775 pairs in 3m17s; kept: x") == shape(
        "    trained on 9 pairs in 0.4s; kept: x"
    )
    assert shape("    epoch 1: loss=0.49 dev_ndcg@10=0.74") != shape(
        "    epoch 1: loss=0.49 dev_recall@10=0.74"
    )


def test_every_line_of_the_excerpt_has_the_shape_the_current_code_prints(
    tmp_path, tiny_model, pair_files, run_cli
):
    """The main job's suite with the tiny model and synthetic pairs: the same names, tables and
    profile-free settings, so that the run prints every kind of line the excerpt shows."""
    data = f'source = "jsonl"\ntrain = "{pair_files / "train.jsonl"}"\ntest = "{pair_files / "test.jsonl"}"'
    suite = tmp_path / "scifact.toml"
    suite.write_text(
        f"""
[suite]
name = "scifact"
cpu_profile = "cpu"
[data]
{data}
dev_fraction = 0.2
[[models]]
name = "minilm"
base = "{tiny_model}"
[[losses]]
name = "mnrl"
type = "MultipleNegativesRankingLoss"
[[losses]]
name = "mnrl-hn"
type = "MultipleNegativesRankingLoss"
[losses.hard_negatives]
num_negatives = 1
range_max = 5
relative_margin = 0.05
[profiles.cpu.training]
epochs = 2
batch_size = 16
learning_rate = 1e-3
[profiles.cpu.search]  # 0.3 ruins the model: once two trials are done, such a trial is pruned
trials = 4
minutes = 45
loss = ["mnrl", "mnrl-hn"]
learning_rate = [1e-3, 0.3]
[evaluation]
k_values = [1, 3, 10, 100]
[export]
variants = ["fp32", "int8"]
ship = "int8"  # not "fastest": on a tiny model which is faster is noise, and the
max_drop = 1.0  # excerpt's max_drop gate line needs int8 shipped
check_samples = 8
[[thresholds]]
metric = "ndcg@10"
min = 0.0
[[thresholds]]
metric = "ndcg@10"
min_gain = -1.0
"""
        + HYBRID_REFERENCES
    )
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 0, out
    printed: dict[str, set[str]] = {}
    for line in out.splitlines():
        head, rest = segments(line)
        printed.setdefault(head, set()).update(rest)
    wrong = []
    for line in excerpt_lines():
        if line.startswith(DATA_DEPENDENT) or SUGGESTION.match(line) or not line.strip():
            continue
        head, rest = segments(line)
        if head not in printed or not rest <= printed[head]:
            wrong.append(f"{line}\n      shape {shape(line)!r}")
    assert not wrong, "lines of the README's excerpt the current code no longer prints like that " + (
        "(rerun the main job and scripts/refresh_docs.py):\n" + "\n".join(wrong)
    )
    doc = json.loads((tmp_path / "o" / "scifact" / "latest" / "results.json").read_text())
    assert {c["name"] for c in doc["candidates"]} >= {"minilm-search"}


def test_the_hook_table_of_docs_plugins_is_the_hookspecs():
    """Every hook of harness/hookspecs.py is a row of docs/plugins.md's table with its arguments, and
    the table names no other hook; the progress row names every declared stage."""
    import inspect

    from harness import hookspecs
    from harness.core.names import Stage

    declared = {
        name: list(inspect.signature(fn).parameters)
        for name, fn in vars(hookspecs).items()
        if name.startswith("harness_") and callable(fn)
    }
    page = (ROOT / "docs" / "plugins.md").read_text()
    rows = re.findall(r"^\| `(harness_\w+)\(([^)]*)\)` \|(.*)$", page, flags=re.M)
    documented = {name: [a.strip() for a in args.split(",") if a.strip()] for name, args, _ in rows}
    assert documented == declared
    progress = next(rest for name, _, rest in rows if name == "harness_candidate_progress")
    assert [s.value for s in Stage if s.value not in progress] == []
