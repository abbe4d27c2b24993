"""The differences between the two supported stacks, in one place: sentence-transformers 5.7 on
transformers 4.57, and sentence-transformers 6.x on transformers 5.x. Everything else in the
harness (the trainer, its arguments, the losses, batch samplers, evaluators and prompts) goes
through the API both share; what one of them spells differently is translated here."""

from __future__ import annotations


def transformers_major() -> int:
    from importlib.metadata import version

    return int(version("transformers").split(".")[0])


def warmup(ratio: float) -> dict:
    """The training arguments for a linear warm-up over ``ratio`` of the steps: ``warmup_ratio`` up to
    transformers 4.x; transformers 5 deprecates it for ``warmup_steps`` given as a float below 1."""
    if transformers_major() >= 5:
        return {"warmup_steps": float(ratio)}
    return {"warmup_ratio": ratio}


def tokenize(model, texts: list[str]) -> dict:
    """A batch's model inputs: ``preprocess`` in sentence-transformers 6 (``tokenize`` is deprecated
    there), ``tokenize`` in 5.x."""
    if hasattr(model, "preprocess"):
        return model.preprocess(texts)
    return model.tokenize(texts)


def length_settable(model) -> bool:
    """Whether ``model`` (a SentenceTransformer) has a max_seq_length to set: a StaticEmbedding
    model reads whole texts and has none."""
    return type(model[0]).__name__ != "StaticEmbedding"


def gradient_checkpointing(model) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them (the
    non-reentrant form, which needs no input that requires a gradient), on both stacks."""
    kwargs = {"gradient_checkpointing_kwargs": {"use_reentrant": False}}
    if hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(**kwargs)
    else:
        model[0].auto_model.gradient_checkpointing_enable(**kwargs)
