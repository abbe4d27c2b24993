"""A run's test rankings as TREC run files (``harness report RUN --rankings DIR``): one file per
candidate row and bm25 reference, named by the row, for ``harness interleave`` and ``harness ab
--simulate`` (or any TREC tool). results.json keeps each row's top 10 per query; the score column
is the reciprocal rank, since the scores are not kept."""

from __future__ import annotations

from pathlib import Path


def export_rankings(doc: dict, folder: Path) -> list[Path]:
    rows = [(c["name"], c.get("rankings") or {}) for c in doc["candidates"]]
    rows += [(r["name"], r["rankings"]) for r in doc.get("references", []) if r.get("rankings")]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, rankings in rows:
        if not rankings:
            continue
        path = folder / f"{name}.trec"
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w") as f:
            for q in sorted(rankings):
                for rank, d in enumerate(rankings[q], 1):
                    f.write(f"{q} Q0 {d} {rank} {1 / rank:.6f} {name}\n")
        tmp.replace(path)
        out.append(path)
    return out
