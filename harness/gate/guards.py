"""Guards: signs that a candidate's numbers should not be trusted or shipped as they are, shown loud in
the terminal and the report. They do not fail a candidate (thresholds do); they say what to look at.
Data-level ones (train/test overlap of queries or of relevant documents) are the data warnings of
:func:`harness.data.prepare.prepare`."""

from __future__ import annotations

#: fewer training pairs than this overfit easily (the project's seed guidance)
FEW_PAIRS = 500
#: a mean cosine distance to the base model's embeddings below this means training changed nothing
UNCHANGED = 1e-4


def embedding_change(base: list, trained: list) -> float:
    """1 - the mean cosine between two sets of unit-length embeddings of the same texts."""
    import numpy as np

    return float(1.0 - (np.asarray(base) * np.asarray(trained)).sum(axis=1).mean())


def guards(result: dict, baseline: dict | None, primary: str) -> list[str]:
    """The guard messages of one candidate's ``result`` (with ``training``), against its baseline's."""
    out = []
    training = result.get("training") or {}
    pairs = training.get("pairs")
    if pairs is not None and pairs < FEW_PAIRS:
        out.append(
            f"only {pairs} training pairs (fewer than {FEW_PAIRS}): expect overfitting, and a dev split "
            "too small to choose well; add data or use fewer epochs"
        )
    losses = [h["loss"] for h in training.get("history", []) if h.get("loss") is not None]
    if len(losses) >= 2 and losses[-1] >= losses[0]:
        out.append(
            f"the training loss did not fall ({losses[0]:.4f} at the start, {losses[-1]:.4f} at the end): "
            "check the learning rate and the pairs"
        )
    change = training.get("embedding_change")
    if change is not None and change < UNCHANGED:
        out.append(
            f"the embeddings did not change (mean cosine distance to the base model {change:.2e}): "
            "training had no effect"
        )
    value, base = result.get("metrics", {}).get(primary), (baseline or {}).get("metrics", {}).get(primary)
    if value is not None and base is not None and value <= base:
        out.append(f"not better than its untuned baseline on {primary} ({value:.4f} vs {base:.4f})")
    return out
