"""Memory known before training and never exceeded (harness/train/memory.py): the probe, the fitting
into a limit by a cached loss, the refusal before anything trains, and the cached loss's equality with
the uncached one."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import WORDS

WIDE_WORDS = 512  #: tokens per document: what makes a step cost memory that the probe can see


def _wide_model(folder: Path) -> Path:
    """A 2-layer BERT of width 256 that reads 512 tokens: a step on a batch of 512-token documents
    costs tens of MB per row, enough to fit or not fit a limit, and still trains in seconds."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tok = Tokenizer(WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    hf = folder / "hf"
    BertTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=WIDE_WORDS,
    ).save_pretrained(hf)  # fmt: skip
    BertModel(
        BertConfig(
            vocab_size=len(vocab), hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=512, max_position_embeddings=WIDE_WORDS,
        )
    ).save_pretrained(hf)  # fmt: skip
    transformer = st_models.Transformer(str(hf), max_seq_length=WIDE_WORDS)
    out = folder / "wide-st"
    SentenceTransformer(
        modules=[transformer, st_models.Pooling(256, "mean"), st_models.Normalize()], device="cpu"
    ).save(str(out))
    return out


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> Path:
    return _wide_model(tmp_path_factory.mktemp("wide"))


def _long_pairs(folder: Path, n: int = 48) -> Path:
    """Pairs whose documents fill 512 tokens; queries of a few words."""
    import random

    rng = random.Random(1)
    for split, count in (("train", n), ("test", 16)):
        with (folder / f"{split}.jsonl").open("w") as f:
            for i in range(count):
                topic = WORDS[i % len(WORDS)]
                doc = " ".join([topic] + rng.choices(WORDS, k=WIDE_WORDS))
                f.write(
                    json.dumps({"query": f"{topic} {WORDS[(i * 7) % len(WORDS)]}", "document": doc}) + "\n"
                )
    return folder


def _suite(folder: Path, model: Path, training: str) -> Path:
    data = _long_pairs(folder)
    path = folder / "wide.toml"
    path.write_text(
        textwrap.dedent(f"""
        [suite]
        name = "wide"
        [data]
        source = "jsonl"
        train = "{data / "train.jsonl"}"
        test = "{data / "test.jsonl"}"
        dev_fraction = 0.2
        [[models]]
        name = "wide"
        base = "{model}"
        [[losses]]
        name = "mnrl"
        type = "MultipleNegativesRankingLoss"
        [training]
        epochs = 1
        batch_size = 32
        learning_rate = 1e-4
        max_seq_length = {WIDE_WORDS}
        """)
        + textwrap.dedent(training)
        + textwrap.dedent("""
        [evaluation]
        k_values = [1, 10]
        max_seq_length = 64
        [export]
        variants = ["fp32"]
        check_samples = 4
        """)
    )
    return path


def _candidate(out: Path) -> dict:
    (doc,) = [json.loads(p.read_text()) for p in out.rglob("results.json")]
    return (
        doc["candidates"]["wide-mnrl"]
        if isinstance(doc["candidates"], dict)
        else next(c for c in doc["candidates"] if c["name"] == "wide-mnrl")
    )


def test_a_batch_over_the_limit_trains_in_cached_mini_batches_within_it(run_cli, tmp_path, wide_model):
    """The whole uncached batch would pass the limit: the probe says so before the first step, the
    cached loss trains the same batch of 32 in mini-batches it chose, and the measured peak stays under."""
    from harness.core.memory import release_freed, resident

    release_freed()
    limit = resident() + 700 * 2**20
    suite = _suite(tmp_path, wide_model, f'max_memory = "{limit // 2**20}MiB"\n')
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert "memory: CachedMultipleNegativesRankingLoss in mini-batches of" in out, out
    memory = _candidate(tmp_path / "out")["training"]["memory"]
    assert memory["loss"] == "CachedMultipleNegativesRankingLoss"
    assert 1 <= memory["mini_batch_size"] < 32
    assert not memory["gradient_checkpointing"]
    whole = [p for p in memory["probes"] if p.get("rows")]
    per_row = whole[1]["peak_bytes"] - whole[0]["peak_bytes"]
    assert whole[0]["peak_bytes"] + 31 * per_row > 0.9 * memory["limit_bytes"]  # uncached would not fit
    assert memory["peak_bytes"] <= memory["limit_bytes"]
    assert code == 0, out


def test_a_batch_that_fits_is_measured_whole_and_predicts_the_training_peak(run_cli, tmp_path, wide_model):
    """Steps of 1 and 2 rows reuse memory the allocator already keeps and under-predict a batch of 32
    (by 30-40% on MiniLM at 256 and 504 tokens): the probe steps to 8 rows, then runs the whole batch it
    plans with, and what it predicts is the peak that training then measures."""
    suite = _suite(tmp_path, wide_model, 'max_memory = "16GiB"\n')
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert code == 0, out
    memory = _candidate(tmp_path / "out")["training"]["memory"]
    assert memory["loss"] == "MultipleNegativesRankingLoss" and memory["mini_batch_size"] is None
    rows = [p["rows"] for p in memory["probes"] if p.get("rows")]
    assert rows[:2] == [1, 2] and 8 in rows and rows[-1] == 32, memory["probes"]
    whole = next(p for p in memory["probes"] if p.get("rows") == 32)
    assert memory["predicted_peak_bytes"] >= whole["peak_bytes"]
    # not under (what the limit relies on), nor so far over that a batch that fits would be refused
    assert 0.75 <= memory["peak_bytes"] / memory["predicted_peak_bytes"] <= 1.1, memory


def test_a_limit_nothing_fits_exits_4_before_anything_trains(run_cli, tmp_path, tiny_suite):
    """The probe runs before the baseline: the error names the setting and the limit that would fit."""
    suite = tiny_suite(name="tight.toml")
    text = suite.read_text().replace("[training]\n", '[training]\nmax_memory = "64MiB"\n')
    suite.write_text(text)
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert code == 4, out
    assert "training.max_memory" in out and 'training.max_memory = "64MiB"' in out, out
    assert "would fit: a limit of at least" in out, out
    assert not list((tmp_path / "out").rglob("*"))  # nothing ran, not even the baseline: no folder left


def test_a_bad_size_is_a_usage_error_naming_the_key(run_cli, tmp_path, tiny_suite):
    suite = tiny_suite(name="badsize.toml")
    suite.write_text(suite.read_text().replace("[training]\n", '[training]\nmax_memory = "8 gigs"\n'))
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert code == 4, out
    assert "training.max_memory" in out and 'expected a size such as "8GiB"' in out, out


def test_the_cached_loss_gives_the_uncached_loss_and_gradients(tiny_model):
    """What the fitting swaps in learns the same: on one batch, CachedMultipleNegativesRankingLoss in
    mini-batches of 3 gives MultipleNegativesRankingLoss's value and gradients, to float tolerance."""
    import torch
    from sentence_transformers import SentenceTransformer

    from harness.builtin.losses import SPECS
    from harness.train.compat import tokenize
    from harness.train.memory import replace_loss

    texts = {
        "anchor": [f"{WORDS[i]} {WORDS[i + 1]}" for i in range(8)],
        "positive": [" ".join(WORDS[i : i + 9]) for i in range(8)],
        "negative_1": [" ".join(WORDS[i + 20 : i + 26]) for i in range(8)],
    }
    results = []
    for name, options in (
        ("MultipleNegativesRankingLoss", {}),
        ("CachedMultipleNegativesRankingLoss", {"mini_batch_size": 3}),
    ):
        model = SentenceTransformer(str(tiny_model), device="cpu")
        model.eval()  # no dropout: the two losses draw their masks in different orders
        spec = SPECS["MultipleNegativesRankingLoss"]
        loss = (spec if name == spec.name else replace_loss(spec, name)).build(model, options)
        features = [dict(tokenize(model, t)) for t in texts.values()]
        value = loss(features, None)
        value.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((value.item(), grads))
    (v1, g1), (v2, g2) = results
    assert v1 == pytest.approx(v2, rel=1e-5, abs=1e-6)
    assert torch.allclose(g1, g2, rtol=1e-4, atol=1e-6), (g1 - g2).abs().max()
    assert g1.abs().sum() > 0  # there were gradients to compare


def test_the_guard_stops_a_training_whose_peak_passes_the_limit():
    """Should a step hold more than the probe measured, training stops at that step with its reason
    (not the kernel's kill, which loses everything)."""
    from types import SimpleNamespace

    from harness.core.memory import PeakMeter, resident
    from harness.train.memory import Guard, MemoryPlan

    plan = MemoryPlan(resident() // 2, 'training.max_memory = "x"', "MultipleNegativesRankingLoss", None,
                      False, 1, 0, 0.0)  # fmt: skip
    with PeakMeter("cpu") as meter:
        guard = Guard(meter, plan)
        control = SimpleNamespace(should_training_stop=False)
        guard.callback.on_step_end(None, SimpleNamespace(global_step=3), control)
    assert control.should_training_stop
    assert guard.message(10).startswith("training stopped at step 3 of 10: its peak memory")
    roomy = MemoryPlan(resident() * 4, "", "MultipleNegativesRankingLoss", None, False, 1, 0, 0.0)
    with PeakMeter("cpu") as meter:
        guard = Guard(meter, roomy)
        control = SimpleNamespace(should_training_stop=False)
        guard.callback.on_step_end(None, SimpleNamespace(global_step=3), control)
    assert not control.should_training_stop and guard.message(10) is None


def test_a_probe_step_the_device_refuses_measures_as_more_than_the_device_has(tiny_model):
    """An out-of-memory error inside a probe step (the GPU's, or the CPU's MemoryError) is "does not
    fit", recorded as such, and the prober goes on measuring."""
    from harness.core.memory import device_total
    from harness.train.probe import Prober

    prober = Prober(tiny_model, 32, {"anchor": ["a b"], "positive": ["c d"]}, "cpu", None)

    def refused():
        raise MemoryError("simulated: the allocator had no more")

    peak = prober._measured(refused, {"rows": 1})
    assert peak > device_total("cpu") and prober.probes[-1]["out_of_memory"] is True
    assert 0 < prober._measured(lambda: None, {"rows": 0}) < device_total("cpu")
    prober.close()
