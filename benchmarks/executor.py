"""Wall time of one suite run with ``--executor local`` and with ``--executor ray``, side by side.

The suite is the shipped ``suites/conala.toml`` (real all-MiniLM-L6-v2, real CoNaLa) cut to a slice
and given several losses, so it has a baseline and several candidates. Each way runs the real
``harness run`` command in a fresh process (a local Ray instance is started by the ray run and
counted in its time), in turn, ``--reps`` times; the results of the two must agree. Prints one JSON
line per way: ``{"executor", "wall_s", "ratio_vs_local", "exit_code", "ndcg@10"}``.

    HARNESS_DATA_DIR=../shared/data python benchmarks/executor.py --pairs 256 --losses 3
    HARNESS_DATA_DIR=../shared/data python benchmarks/executor.py --device cuda --ray-address auto
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOSSES = [
    ("mnrl", "MultipleNegativesRankingLoss"),
    ("sym", "MultipleNegativesSymmetricRankingLoss"),
    ("cached", "CachedMultipleNegativesRankingLoss"),
    ("mnrl_s30", "MultipleNegativesRankingLoss"),
]


def suite_text(pairs: int, queries: int, corpus: int, losses: int) -> str:
    text = (ROOT / "suites" / "conala.toml").read_text()
    head, _, _ = text.partition("[profiles.cpu.training]")
    head = head.replace('[[losses]]\nname = "mnrl"\ntype = "MultipleNegativesRankingLoss"\n', "")
    for name, kind in LOSSES[:losses]:
        head += f'\n[[losses]]\nname = "{name}"\ntype = "{kind}"\n' + (
            "scale = 30.0\n" if name.endswith("s30") else ""
        )
    return head + (
        f"\n[profiles.slice.data]\nlimit_train_pairs = {pairs}\nlimit_test_queries = {queries}\n"
        f"limit_corpus = {corpus}\n[profiles.slice.training]\nepochs = 1\nbatch_size = 32\n"
        'max_seq_length = 64\n[[profiles.slice.thresholds]]\nmetric = "ndcg@10"\nmin_gain = 0.0\n'
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--pairs", type=int, default=256)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--corpus", type=int, default=600)
    p.add_argument("--losses", type=int, default=3, choices=range(1, len(LOSSES) + 1))
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--ray-address", help="join this cluster instead of starting a local Ray instance")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="harness-bench-executor-"))
    suite = work / "conala-slice.toml"
    suite.write_text(suite_text(args.pairs, args.queries, args.corpus, args.losses))
    ways = {
        "local": [],
        "ray": ["--executor", "ray"] + (["--ray-address", args.ray_address] if args.ray_address else []),
    }
    times: dict[str, list[float]] = {w: [] for w in ways}
    outcome: dict[str, tuple] = {}
    for rep in range(args.reps):
        for way, extra in ways.items():
            out = work / f"{way}-{rep}"
            cmd = [
                sys.executable,
                "-m",
                "harness",
                "run",
                str(suite),
                "--profile",
                "slice",
                "--device",
                args.device,
                "--out",
                str(out),
                "-q",
                *extra,
            ]
            start = time.perf_counter()
            code = subprocess.run(
                cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ).returncode
            times[way].append(time.perf_counter() - start)
            doc = json.loads((out / "conala" / "latest" / "results.json").read_text())
            outcome[way] = (
                code,
                {c["name"]: round(c["metrics"].get("ndcg@10", float("nan")), 4) for c in doc["candidates"]},
            )
    local = statistics.median(times["local"])
    for way in ways:
        wall = statistics.median(times[way])
        print(
            json.dumps(
                {
                    "executor": way,
                    "device": args.device,
                    "candidates": args.losses,
                    "wall_s": round(wall, 1),
                    "ratio_vs_local": round(wall / local, 2),
                    "exit_code": outcome[way][0],
                    "ndcg@10": outcome[way][1],
                }
            )
        )
    same = outcome["local"][0] == outcome["ray"][0] and all(
        abs(outcome["local"][1][k] - outcome["ray"][1][k]) <= 2e-3 for k in outcome["local"][1]
    )
    print(json.dumps({"same_results": same, "work": str(work)}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
