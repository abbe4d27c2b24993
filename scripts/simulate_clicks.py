"""Simulate a search log from SciFact (BEIR) for the ``clicks`` pair source: what a team with a search
box would have, with known relevance behind it, so the source can be checked against the truth.

For each claim (train and test), a few sessions are shown BM25's top ``--depth`` abstracts; a user
examines rank r with probability (1/r)^eta (position bias) and clicks an examined abstract with
probability ``--p-relevant`` if SciFact judges it relevant, else ``--p-noise``. Each claim is searched
around one date between 2026-06-01 and 2026-11-30, so ``test_after`` splits by claim, as time does.
Writes ``impressions.csv`` (query, document_id, position, clicked, timestamp, session) and
``judged-test.csv`` (SciFact's test judgements as query, document_id, score: for ``test_qrels``).

    HARNESS_DATA_DIR=../shared/data python scripts/simulate_clicks.py --out suites/data/scifact-clicks
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def simulate(
    data_dir: Path,
    out: Path,
    sessions: int = 3,
    depth: int = 10,
    eta: float = 1.0,
    p_relevant: float = 0.9,
    p_noise: float = 0.05,
    seed: int = 0,
) -> dict:
    from harness.builtin.beir import load_beir_folder
    from harness.evaluate.lexical import Bm25

    data = load_beir_folder(data_dir / "scifact", ["train", "test"])
    ids = data.corpus["id"].to_list()
    queries = dict(data.queries.select("id", "text").iter_rows())
    relevant: dict[str, set[str]] = {}
    for split in ("train", "test"):
        for q, d, s in data.qrels[split].iter_rows():
            if s > 0:
                relevant.setdefault(q, set()).add(d)
    asked = sorted(relevant)
    scores = Bm25(data.corpus["text"].to_list()).scores([queries[q] for q in asked])
    rng = random.Random(seed)
    start = dt.datetime(2026, 6, 1)
    out.mkdir(parents=True, exist_ok=True)
    shown = clicks = 0
    with (out / "impressions.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["query", "document_id", "position", "clicked", "timestamp", "session"])
        for row, q in zip(scores, asked):
            top = [ids[i] for i in (-row).argsort()[:depth]]
            day = start + dt.timedelta(days=rng.uniform(0, 182))
            for s in range(sessions):
                when = day + dt.timedelta(hours=rng.uniform(0, 72))
                session = f"{q}-{s}"
                text = queries[q] if rng.random() < 0.8 else queries[q].lower()  # users type carelessly
                for r, d in enumerate(top, 1):
                    seen = rng.random() < (1 / r) ** eta
                    hit = seen and rng.random() < (p_relevant if d in relevant[q] else p_noise)
                    w.writerow([text, d, r, int(hit), when.isoformat(timespec="seconds"), session])
                    shown += 1
                    clicks += hit
    with (out / "judged-test.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["query", "document_id", "score"])
        for q, d, s in data.qrels["test"].iter_rows():
            w.writerow([queries[q], d, s])
    return {"queries": len(asked), "impressions": shown, "clicks": clicks, "folder": str(out)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir", default=os.environ.get("HARNESS_DATA_DIR"), help="default: $HARNESS_DATA_DIR"
    )
    p.add_argument("--out", default=str(ROOT / "suites" / "data" / "scifact-clicks"))
    p.add_argument("--sessions", type=int, default=3, help="sessions per claim (default 3)")
    p.add_argument("--depth", type=int, default=10, help="results shown per session (default 10)")
    p.add_argument("--eta", type=float, default=1.0, help="position bias: rank r is examined with (1/r)^eta")
    p.add_argument("--p-relevant", type=float, default=0.9)
    p.add_argument("--p-noise", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not args.data_dir:
        p.error("give --data-dir or set HARNESS_DATA_DIR (the folder holding scifact/)")
    print(
        simulate(
            Path(args.data_dir),
            Path(args.out),
            args.sessions,
            args.depth,
            args.eta,
            args.p_relevant,
            args.p_noise,
            args.seed,
        )
    )


if __name__ == "__main__":
    main()
