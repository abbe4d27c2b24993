"""The loss catalogue: sentence-transformers losses by name, with the columns each one consumes.

Options a suite gives in ``[[losses]]`` are passed to the loss's constructor; any other key is an
error, checked against the constructor's signature before training. Which columns each loss needs
(see :data:`harness.api.COLUMNS`) is checked against what the data gives before any training.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import hookimpl
from harness.api import LossSpec


def _st_class(name: str):
    import sentence_transformers.losses as L

    return getattr(L, name)


def _options_of(cls_name: str, skip=("self", "model")) -> tuple[str, ...]:
    import inspect

    return tuple(p for p in inspect.signature(_st_class(cls_name)).parameters if p not in skip)


def _st_factory(name: str):
    def factory(model, **options):
        return _st_class(name)(model, **options)

    return factory


@dataclass(frozen=True)
class StLoss(LossSpec):
    """A sentence-transformers loss class, built as ``cls(model, **options)``."""

    def accepted_options(self):  # read lazily: importing sentence-transformers is slow
        return _options_of(self.name)


IN_BATCH = "no_duplicates"  # in-batch negatives: a duplicate text in a batch would be a false negative
PAIRS, TRIPLETS, SCORED = (
    ("anchor", "positive"),
    ("anchor", "positive", "negative"),
    ("sentence1", "sentence2", "score"),
)

# name, columns, batch sampler, takes extra negative columns, options that name a model, description
CATALOGUE = (
    (
        "MultipleNegativesRankingLoss",
        PAIRS,
        IN_BATCH,
        True,
        (),
        "InfoNCE with in-batch negatives (and mined hard negatives as extra columns)",
    ),
    (
        "CachedMultipleNegativesRankingLoss",
        PAIRS,
        IN_BATCH,
        True,
        (),
        "MNRL with gradient caching: large batches in little memory (mini_batch_size)",
    ),
    (
        "MultipleNegativesSymmetricRankingLoss",
        PAIRS,
        IN_BATCH,
        False,
        (),
        "MNRL in both directions (query->doc and doc->query)",
    ),
    (
        "GISTEmbedLoss",
        PAIRS,
        IN_BATCH,
        True,
        ("guide",),
        "MNRL whose guide model drops in-batch negatives it rates above the positive (guide = a model name)",
    ),
    (
        "CachedGISTEmbedLoss",
        PAIRS,
        IN_BATCH,
        True,
        ("guide",),
        "GISTEmbedLoss with gradient caching (mini_batch_size)",
    ),
    (
        "TripletLoss",
        TRIPLETS,
        "batch_sampler",
        False,
        (),
        "(anchor, positive, negative) with a margin: needs mined hard negatives",
    ),
    (
        "CoSENTLoss",
        SCORED,
        "batch_sampler",
        False,
        (),
        "scored pairs ranked by their score: graded relevance or mined negatives (score 0)",
    ),
    ("AnglELoss", SCORED, "batch_sampler", False, (), "CoSENT on angles in complex space, for scored pairs"),
)
SPECS = {
    name: StLoss(
        name=name,
        factory=_st_factory(name),
        columns=cols,
        batch_sampler=sampler,
        takes_negatives=negs,
        model_options=models,
        description=doc,
    )
    for name, cols, sampler, negs, models, doc in CATALOGUE
}


@dataclass(frozen=True)
class Matryoshka(LossSpec):
    """MatryoshkaLoss around another loss of the catalogue: the embedding's first d dimensions are
    trained to work alone, for each d in ``matryoshka_dims``; the model is evaluated at each of them."""

    OPTIONS = ("loss", "loss_options", "matryoshka_dims", "matryoshka_weights", "n_dims_per_step")

    def inner(self, options: dict) -> LossSpec:
        return SPECS[options.get("loss", "MultipleNegativesRankingLoss")]

    def build(self, model, options: dict):
        options = dict(options)
        inner = self.inner(options)
        options.pop("loss", None)
        inner_loss = inner.build(model, options.pop("loss_options", {}))
        dims = options.pop("matryoshka_dims")
        size = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
        if max(dims) > size:
            raise ValueError(f"matryoshka_dims {dims}: the model's embeddings have {size} dimensions")
        return _st_class("MatryoshkaLoss")(model, inner_loss, matryoshka_dims=dims, **options)

    def accepted_options(self):
        return self.OPTIONS

    def columns_for(self, options):
        return self.inner(options).columns

    def negatives_for(self, options):
        return self.inner(options).takes_negatives

    def evaluation_dims(self, options):
        return sorted(options.get("matryoshka_dims") or [], reverse=True)

    def problems(self, options):
        out = []
        name = options.get("loss", "MultipleNegativesRankingLoss")
        if name not in SPECS or SPECS[name].model_options:
            usable = [n for n, s in SPECS.items() if not s.model_options]
            out.append(("loss", f"expected the name of a loss to wrap, one of {usable}, got {name!r}"))
        dims = options.get("matryoshka_dims")
        if not (isinstance(dims, list) and dims and all(isinstance(d, int) and d > 0 for d in dims)):
            out.append(
                (
                    "matryoshka_dims",
                    f"expected a non-empty list of embedding sizes, e.g. [384, 256, 128, 64], got {dims!r}",
                )
            )
        if not isinstance(options.get("loss_options", {}), dict):
            out.append(("loss_options", "expected a table of the wrapped loss's options"))
        return out


@hookimpl
def harness_register_losses(register):
    for spec in SPECS.values():
        register(spec)
    register(
        Matryoshka(
            name="MatryoshkaLoss",
            factory=None,
            batch_sampler=IN_BATCH,
            description="trains the first d dimensions to work alone for each d in matryoshka_dims, "
            "around another loss (loss = ..., default MNRL); evaluated at each d",
        )
    )
