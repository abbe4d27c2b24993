"""Hard-negative mining with sentence-transformers' ``mine_hard_negatives``, and what it found.

The corpus it mines from is every document except those relevant to a dev or test query: a
negative must never be a document the held-out splits are judged on. The statistics (scores of
positives and negatives, pairs left without enough negatives, what the margins skipped) go to the
report, with a check for likely false negatives: mined negatives the mining model scores at least
as high as the pair's own positive, which are often relevant documents nobody labelled.
"""

from __future__ import annotations

import contextlib
import io
import re

from harness.data.prepare import Prepared
from harness.errors import CandidateError
from harness.suite.training_tables import HardNegativesTable

EXAMPLES = 5  #: likely false negatives shown in the report


def corpus_texts(data: Prepared) -> tuple[list[str], set[str]]:
    """The documents negatives may come from: the corpus (and training-only documents) minus every
    document relevant to a dev or test query; and the texts of those held-out documents."""
    held_out = set(data.dev.qrels["doc_id"]) | set(data.test.qrels["doc_id"])
    rows = list(data.corpus.select("id", "text").iter_rows())
    if data.train_documents is not None:
        rows += list(data.train_documents.iter_rows())
    return [t for d, t in rows if d not in held_out], {t for d, t in rows if d in held_out}


def drop_held_out(columns: dict, scores: list, held_out: set[str]) -> int:
    """Remove the rows with a held-out document among their negatives (in place); how many.

    sentence-transformers adds every training positive to the corpus it mines from, so a document that
    is a training positive *and* relevant to a dev or test query can come back as another query's
    negative; such rows are taken out here (and get random negatives, see :func:`fill_random`)."""
    negs = [k for k in columns if k.startswith("negative_")]
    keep = [i for i in range(len(columns["anchor"])) if not any(columns[k][i] in held_out for k in negs)]
    dropped = len(columns["anchor"]) - len(keep)
    if dropped:
        for k in columns:
            columns[k] = [columns[k][i] for i in keep]
        scores[:] = [scores[i] for i in keep]
    return dropped


def mine(
    data: Prepared,
    cfg: HardNegativesTable,
    model_dir,
    device: str,
    max_seq_length: int | None = None,
    query_prompt: str = "",
    document_prompt: str = "",
    seed: int = 0,
) -> dict:
    """``{"columns": {anchor, positive, negative_1..n}, "stats": {...}}`` (texts without prompts).

    A pair for which the settings leave fewer than ``num_negatives`` candidates (typically a hard
    query whose positive ranks below ``range_max``, so every candidate is within the margin) keeps
    its place in training with random documents as its negatives, rather than being dropped: those
    are the pairs the model most needs. How many is in ``stats["pairs_random"]``."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    anchors, positives = data.train_pairs()
    if not anchors:
        raise CandidateError("hard-negative mining: the train split has no pairs")
    model = SentenceTransformer(str(model_dir), device=device)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    corpus, held_out = corpus_texts(data)
    log = io.StringIO()
    try:
        with (
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):  # its statistics and progress bars
            ds = mine_hard_negatives(
                Dataset.from_dict({"anchor": anchors, "positive": positives}),
                model,
                corpus=corpus,
                range_min=cfg.range_min,
                range_max=cfg.range_max,
                absolute_margin=cfg.absolute_margin,
                relative_margin=cfg.relative_margin,
                max_score=cfg.max_score,
                num_negatives=cfg.num_negatives,
                sampling_strategy=cfg.sampling,
                query_prompt=query_prompt or None,
                corpus_prompt=document_prompt or None,
                output_format="n-tuple",
                output_scores=True,
                batch_size=cfg.batch_size,
                verbose=True,
            )
    except ValueError as e:  # the library's own checks of the settings
        raise CandidateError(f"hard-negative mining: {e}") from None
    columns = {k: list(ds[k]) for k in ds.column_names if k != "scores"}
    scores = list(ds["scores"]) if len(ds) else []
    dropped = drop_held_out(columns, scores, held_out)
    stats = statistics(columns, scores, len(anchors), len(corpus), cfg)
    stats["held_out_dropped"] = dropped
    stats["pairs_random"] = fill_random(columns, anchors, positives, corpus, cfg.num_negatives, seed)
    stats["notes"] = [
        line.strip()
        for line in log.getvalue().splitlines()
        if re.match(r"\s*(Skipped|Could not find|Found)", line)
    ]
    return {"columns": columns, "stats": stats}


def fill_random(
    columns: dict, anchors: list[str], positives: list[str], corpus: list[str], n: int, seed: int
) -> int:
    """Append the pairs mining left out to ``columns``, each with ``n`` random documents of ``corpus``
    (never one of its query's positives) as negatives; how many pairs that was."""
    import random
    from collections import Counter

    left = Counter(zip(anchors, positives)) - Counter(zip(columns["anchor"], columns["positive"]))
    if not left:
        return 0
    own: dict[str, set[str]] = {}
    for a, p in zip(anchors, positives):
        own.setdefault(a, set()).add(p)
    rng = random.Random(seed)
    added = 0
    for (a, p), times in sorted(left.items()):
        for _ in range(times):
            picks: list[str] = []
            while len(picks) < n:
                d = corpus[rng.randrange(len(corpus))]
                if d not in own[a] and d not in picks:
                    picks.append(d)
            columns["anchor"].append(a)
            columns["positive"].append(p)
            for i, d in enumerate(picks, 1):
                columns[f"negative_{i}"].append(d)
            added += 1
    return added


def statistics(
    columns: dict, scores: list[list[float]], pairs_in: int, corpus_size: int, cfg: HardNegativesTable
) -> dict:
    """Counts and score distributions of a mining run, and its likely false negatives."""
    import numpy as np

    kept = len(scores)
    s = np.asarray(scores, dtype=float).reshape(kept, -1) if kept else np.zeros((0, cfg.num_negatives + 1))
    pos, neg = s[:, 0], s[:, 1:]

    def dist(x):
        x = np.asarray(x).ravel()
        if not x.size:
            return None
        q = np.percentile(x, [25, 50, 75])
        return {
            "mean": round(float(x.mean()), 4),
            "p25": round(float(q[0]), 4),
            "median": round(float(q[1]), 4),
            "p75": round(float(q[2]), 4),
            "min": round(float(x.min()), 4),
            "max": round(float(x.max()), 4),
        }

    suspicious = np.argwhere(neg >= pos[:, None]) if kept else np.zeros((0, 2), dtype=int)
    share = len(suspicious) / neg.size if neg.size else 0.0
    examples = []
    for row, j in (
        suspicious[np.argsort(-(neg[tuple(suspicious.T)] - pos[suspicious[:, 0]]))][:EXAMPLES]
        if len(suspicious)
        else []
    ):
        examples.append(
            {
                "query": columns["anchor"][row],
                "positive": columns["positive"][row][:300],
                "negative": columns[f"negative_{j + 1}"][row][:300],
                "positive_score": round(float(pos[row]), 4),
                "negative_score": round(float(neg[row, j]), 4),
            }
        )
    return {
        "pairs": pairs_in,
        "pairs_with_negatives": kept,
        "pairs_without": pairs_in - kept,
        "queries": len(set(columns["anchor"])),
        "negatives": int(neg.size),
        "corpus": corpus_size,
        "negatives_per_pair": cfg.num_negatives,
        "positive_score": dist(pos),
        "negative_score": dist(neg),
        "margin": dist(pos[:, None] - neg) if kept else None,
        "likely_false_negatives": {
            "count": int(len(suspicious)),
            "share": round(share, 4),
            "examples": examples,
            "rule": "a mined negative scored at least as high as its pair's positive",
        },
        "settings": {k: v for k, v in vars(cfg).items() if k not in ("batch_size", "false_negative_share")},
    }


def warnings(stats: dict, cfg: HardNegativesTable) -> list[str]:
    """What a user should look at in a mining run (shown as the candidate's guards)."""
    out = []
    fn = stats["likely_false_negatives"]
    if fn["share"] > cfg.false_negative_share:
        out.append(
            f"{fn['share']:.0%} of the mined negatives ({fn['count']}) score at least as high as their "
            "positive: "
            "likely unlabelled positives; set range_min, or absolute_margin = 0 to drop them"
        )
    if stats["pairs_without"] and stats["pairs_without"] > 0.05 * stats["pairs"]:
        held = stats.get("held_out_dropped") or 0
        why = f" ({held} of them because one was a document judged for a dev or test query)" if held else ""
        out.append(
            f"{stats['pairs_without']} of {stats['pairs']} training pairs found fewer than "
            f"{cfg.num_negatives} "
            f"hard negatives within the settings{why} and train with random documents as negatives instead: "
            "raise range_max or loosen the margins"
        )
    return out
