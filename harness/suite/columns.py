"""Whether a suite's data can feed each of its losses: the columns a loss needs (its
:class:`harness.api.LossSpec`) against what the pairs give, mined negatives and grades included.
Checked before the data is loaded (``harness check``) and again once it is (grades, given negatives)."""

from __future__ import annotations

from harness.api import LossSpec


def missing_columns(
    spec: LossSpec, options: dict, mines: bool, graded: bool | None = None, negatives: bool | None = False
) -> str | None:
    """Why the data cannot feed ``spec`` (with ``options``), or None. ``mines``: the loss entry has a
    ``[losses.hard_negatives]`` table; ``graded``: the training pairs have several relevance grades
    (None: not known yet, assumed); ``negatives``: the training pairs come with negatives of their
    own (judgements with score 0; None: not known until the data is loaded)."""
    needs = spec.columns_for(options)
    if "negative" in needs and not mines and negatives is False:
        return (
            f"{spec.name} needs the column 'negative' (columns {list(needs)}), and the pairs give only "
            "'anchor' "
            "and 'positive': add a [losses.hard_negatives] table to this loss to mine them, or give "
            "negatives "
            "with the data (the pairs source's negative column)"
        )
    if "score" in needs and not mines and graded is False and not negatives:
        return (
            f"{spec.name} needs scored pairs (columns {list(needs)}) whose scores differ, and every training "
            "pair has the same relevance grade: add a [losses.hard_negatives] table (mined negatives get "
            "score 0) or use a pair source with graded relevance or negatives"
        )
    unknown = [
        c for c in needs if c not in ("anchor", "positive", "negative", "sentence1", "sentence2", "score")
    ]
    if unknown:
        return f"{spec.name} needs the column(s) {unknown}, which no pair source gives"
    return None
