"""Build the single CSV of (query, document) pairs that suites/scifact-pairs.toml trains from, out of
SciFact (BEIR) as it lies in $HARNESS_DATA_DIR/scifact: the train and test judgements together, with
no split column (the harness makes the test split), plus a CSV of the rest of the corpus.

    HARNESS_DATA_DIR=../shared/data python scripts/scifact_pairs.py            # suites/data/scifact-*.csv
    HARNESS_DATA_DIR=../shared/data python scripts/scifact_pairs.py --negatives

``--negatives`` adds a ``negative`` column: per query, the abstract BM25 ranks highest among those
not relevant to it, standing in for the "shown but wrong" documents a team's own data has.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(data_dir: Path, out: Path, negatives: bool = False) -> tuple[Path, Path]:
    from harness.builtin.beir import load_beir_folder

    data = load_beir_folder(data_dir / "scifact", ["train", "test"])
    docs = dict(data.corpus.select("id", "text").iter_rows())
    queries = dict(data.queries.select("id", "text").iter_rows())
    pairs = [(q, d) for split in ("train", "test") for q, d, s in data.qrels[split].iter_rows() if s > 0]
    negative: dict[str, str] = {}
    if negatives:
        from harness.evaluate.lexical import Bm25

        ids = list(docs)
        asked = sorted({q for q, _ in pairs})
        scores = Bm25([docs[d] for d in ids]).scores([queries[q] for q in asked])
        relevant: dict[str, set[str]] = {}
        for q, d in pairs:
            relevant.setdefault(q, set()).add(d)
        for row, q in zip(scores, asked):
            best = next(i for i in (-row).argsort() if ids[i] not in relevant[q])
            negative[q] = docs[ids[best]]
    out.mkdir(parents=True, exist_ok=True)
    pairs_file = out / ("scifact-pairs-negatives.csv" if negatives else "scifact-pairs.csv")
    with pairs_file.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["query", "document"] + (["negative"] if negatives else []))
        for q, d in pairs:
            w.writerow([queries[q], docs[d]] + ([negative[q]] if negatives else []))
    corpus_file = out / "scifact-corpus.csv"
    used = {d for _, d in pairs}
    with corpus_file.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        for d, t in docs.items():
            if d not in used:
                w.writerow([t])
    return pairs_file, corpus_file


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir", default=os.environ.get("HARNESS_DATA_DIR"), help="default: $HARNESS_DATA_DIR"
    )
    p.add_argument("--out", default=str(ROOT / "suites" / "data"), help="default: suites/data")
    p.add_argument(
        "--negatives", action="store_true", help="add a negative column (BM25's best wrong abstract)"
    )
    args = p.parse_args()
    if not args.data_dir:
        p.error("give --data-dir or set HARNESS_DATA_DIR (the folder holding scifact/)")
    for f in build(Path(args.data_dir), Path(args.out), args.negatives):
        print(f)


if __name__ == "__main__":
    main()
