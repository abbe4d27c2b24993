"""How many impressions an A/B split and an interleaved test need to name the better of two rankers,
from simulated traffic (the cascade click model of harness/monitor/clickmodel.py over a test split's
judgements), and how often two arms of the same ranker are told apart (the false-positive rate).

    python benchmarks/ab_power.py RUN_A RUN_B QRELS [--seeds 10] [--impressions 250,500,1000,2000,5000]

RUN_A should be the better run (by its nDCG@10); the share of seeds in which each test says "RUN_A is
better" is printed per impression count, then the null check: RUN_A against itself, 20 seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.monitor import abtest, clickmodel, interleave
from harness.ship.batch import read_qrels


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("qrels")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--impressions", default="250,500,1000,2000,5000")
    p.add_argument("--metric", default="mrr")
    p.add_argument("--click-model", default="navigational")
    args = p.parse_args()
    a, b = interleave.read_run(Path(args.run_a)), interleave.read_run(Path(args.run_b))
    qrels = read_qrels(Path(args.qrels), None, None)
    names = ("A", "B")
    print(f"click model {args.click_model}; A = {args.run_a}, B = {args.run_b}; {args.seeds} seeds")
    print("impressions  ab_split_correct  interleaved_correct")
    for n in (int(x) for x in args.impressions.split(",")):
        ab_ok = il_ok = 0
        for seed in range(args.seeds):
            imps = clickmodel.simulate_ab({"A": a, "B": b}, qrels, n, args.click_model, seed)
            doc = abtest.analyse(imps, "B", None, seed)
            ab_ok += any(c["metric"] == args.metric and c["verdict"] == "better" for c in doc["comparisons"])
            imps = clickmodel.simulate_interleaved(a, b, names, qrels, n, args.click_model, seed=seed)
            il = interleave.analyse_interleaved(imps, names, seed)
            il_ok += il["comparisons"][0]["verdict"] == "better"
        print(f"{n:>11}  {ab_ok:>7}/{args.seeds:<8}  {il_ok:>10}/{args.seeds}")
    n = max(int(x) for x in args.impressions.split(","))
    same = sum(
        all(
            c["verdict"] == "not distinguishable"
            for c in abtest.analyse(
                clickmodel.simulate_ab({"A": a, "A2": a}, qrels, n, args.click_model, seed), "A", None, seed
            )["comparisons"]
            if c["metric"] == args.metric
        )
        for seed in range(20)
    )
    print(f"null check (A against A, {n} impressions): not distinguishable in {same}/20 seeds")


if __name__ == "__main__":
    main()
