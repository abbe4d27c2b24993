"""The loss catalogue: sentence-transformers losses by name, with the columns each one consumes.

Options a suite gives in ``[[losses]]`` are passed to the loss's constructor; any other key is an
error, checked against the constructor's signature before training.
"""

from __future__ import annotations

from harness import hookimpl
from harness.api import LossSpec


def _st_loss(cls_name: str):
    def factory(model, **options):
        import sentence_transformers.losses as L

        return getattr(L, cls_name)(model, **options)

    return factory


def _options_of(cls_name: str) -> tuple[str, ...]:
    # the signature is read lazily (importing sentence-transformers is slow), see accepted_options
    import inspect

    import sentence_transformers.losses as L

    return tuple(p for p in inspect.signature(getattr(L, cls_name)).parameters if p not in ("self", "model"))


class _LazyLossSpec(LossSpec):
    def accepted_options(self):
        return _options_of(self.name)


IN_BATCH = "no_duplicates"  # in-batch negatives: a duplicate text in a batch would be a false negative

CATALOGUE = (
    ("MultipleNegativesRankingLoss", ("anchor", "positive"), IN_BATCH,
     "InfoNCE with in-batch negatives (and hard negatives as extra columns)"),
    ("CachedMultipleNegativesRankingLoss", ("anchor", "positive"), IN_BATCH,
     "MNRL with gradient caching: large batches in little memory"),
    ("MultipleNegativesSymmetricRankingLoss", ("anchor", "positive"), IN_BATCH,
     "MNRL in both directions (query->doc and doc->query)"),
)


@hookimpl
def harness_register_losses(register):
    for name, columns, sampler, doc in CATALOGUE:
        register(_LazyLossSpec(name=name, factory=_st_loss(name), columns=columns, description=doc,
                               batch_sampler=sampler))
