"""Shared fixtures: a tiny sentence-transformers model built in code, synthetic pair data, a
helper that writes a suite and runs the real ``harness`` CLI on it, and a page in headless Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import textwrap
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA_DIR = Path(os.environ.get("HARNESS_DATA_DIR", SHARED_DATA))

WORDS = [f"w{i}" for i in range(120)] + ["what", "is", "the", "of", "a", "and", "code", "doc", "query"]


def _tiny_model(folder: Path, seed: int = 0, pooling: str = "mean", normalize: bool = True) -> Path:
    """A 2-layer BERT of width 32 with a word-level WordPiece vocabulary, saved as sentence-transformers."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tok = Tokenizer(WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok.decoder = decoders.WordPiece()
    hf_dir = folder / "hf"
    BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    ).save_pretrained(hf_dir)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(hf_dir)
    transformer = st_models.Transformer(str(hf_dir), max_seq_length=64)
    modules = [transformer, st_models.Pooling(transformer.get_word_embedding_dimension(), pooling)]
    out = folder / "tiny-st"
    SentenceTransformer(modules=modules + ([st_models.Normalize()] if normalize else []), device="cpu").save(
        str(out)
    )
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return _tiny_model(tmp_path_factory.mktemp("tiny"))


def synthetic_pairs(n: int, seed: int) -> list[dict]:
    """Queries of two words, documents that contain those words among others: learnable, not trivial."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.sample(WORDS[:120], 2)
        noise = rng.sample(WORDS[:120], 4)
        rows.append(
            {"query": f"what is {a} {b}", "document": f"the {a} of {noise[0]} and {b} {noise[1]} {noise[2]}"}
        )
    return rows


#: a bm25 reference and its hybrid, as TOML to append to a suite
HYBRID_REFERENCES = """
[[references]]
name = "bm25"
type = "bm25"
[[references]]
name = "hybrid"
type = "hybrid"
"""


def write_pair_files(folder: Path) -> Path:
    d = folder / "data"
    d.mkdir()
    for name, n, seed in (("train", 80, 1), ("test", 20, 2)):
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synthetic_pairs(n, seed)))
    return d


@pytest.fixture()
def pair_files(tmp_path) -> Path:
    return write_pair_files(tmp_path)


def write_suite(folder: Path, body: str, name: str = "tiny.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture()
def tiny_suite(tmp_path, tiny_model, pair_files):
    """Factory: a jsonl suite on the tiny model; ``extra`` TOML is appended."""
    return tiny_suite_factory(tmp_path, tiny_model, pair_files)


def tiny_suite_factory(tmp_path: Path, tiny_model: Path, pair_files: Path):
    """What :func:`tiny_suite` gives, for fixtures of any scope."""

    def make(
        extra: str = "",
        name: str = "tiny.toml",
        data: str | None = None,
        plugins: tuple = (),
        export: str = "",
    ) -> Path:
        """``data``: the [data] table's lines instead of the synthetic jsonl pairs; ``export``: more
        lines of the [export] table."""
        data = data or (
            f'source = "jsonl"\ntrain = "{pair_files / "train.jsonl"}"\n'
            f'test = "{pair_files / "test.jsonl"}"\ndev_fraction = 0.2'
        )
        if "variants" not in export and "[export]" not in extra:  # fp32 only, unless a test asks (the
            export = 'variants = ["fp32"]\n' + textwrap.dedent(export)  # CPU default builds int8 too)
        return write_suite(
            tmp_path,
            f"""
[suite]
name = "{Path(name).stem}"
plugins = {json.dumps([str(p) for p in plugins])}
[data]
{textwrap.dedent(data).strip()}
[[models]]
name = "tiny"
base = "{tiny_model}"
[[losses]]
name = "mnrl"
type = "MultipleNegativesRankingLoss"
[training]
epochs = 2
batch_size = 16
learning_rate = 1e-3
[evaluation]
k_values = [1, 3, 10]
[export]
check_samples = 8
"""
            + textwrap.dedent(export)
            + textwrap.dedent(extra),
            name,
        )

    return make


@pytest.fixture(scope="session")
def shipped_suite_data() -> Path:
    """suites/data/: the files suites/scifact-pairs.toml and suites/scifact-clicks.toml read, built from
    $HARNESS_DATA_DIR/scifact by the scripts their comments name (not committed)."""
    import sys

    root = Path(__file__).resolve().parents[1]
    out = root / "suites" / "data"
    if not (DATA_DIR / "scifact" / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact is not in {DATA_DIR}: the suites built from it cannot be checked")
    sys.path.insert(0, str(root / "scripts"))
    from scifact_pairs import build
    from simulate_clicks import simulate

    if not (out / "scifact-pairs.csv").is_file() or not (out / "scifact-corpus.csv").is_file():
        build(DATA_DIR, out)
    if not (out / "scifact-clicks" / "impressions.csv").is_file():
        simulate(DATA_DIR, out / "scifact-clicks")
    return out


def run_in_process(tmp_path: Path, *args: str) -> tuple[int, str]:
    """``harness ARGS`` in-process with the tests' environment (offline, its cache under ``tmp_path``):
    (exit code, stdout+stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from harness.cli import main

    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_DATA_DIR", str(DATA_DIR))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
        with redirect_stdout(buf), redirect_stderr(buf):
            code = main(list(args))
    return code, buf.getvalue()


@pytest.fixture()
def run_cli(tmp_path, monkeypatch):
    """Run ``harness`` in-process; returns (exit code, stdout+stderr)."""
    monkeypatch.setenv("HARNESS_DATA_DIR", str(DATA_DIR))  # for what a test does beside the CLI
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    return lambda *args: run_in_process(tmp_path, *args)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_data = pytest.mark.skip(reason=f"real data not found at {DATA_DIR} (set HARNESS_DATA_DIR)")
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(skip_gpu)
        if "integration" in item.keywords and not (DATA_DIR / "scifact" / "corpus.jsonl").is_file():
            item.add_marker(skip_data)


# --- every results.json a test writes follows harness/report/results.schema.json ----------------------------

RESULTS_SCHEMA = Path(__file__).resolve().parents[1] / "harness" / "report" / "results.schema.json"
_checked: dict[str, int] = {}  #: results.json path -> mtime_ns when it was validated


def results_problems(doc) -> list[str]:
    """Where ``doc`` breaks harness/report/results.schema.json (the JSON path and the message of each)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(RESULTS_SCHEMA.read_text()))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(doc)
    ]


@pytest.fixture(autouse=True)
def results_follow_the_schema(request, tmp_path_factory):
    """After each test: every results.json written (or rewritten) under the test session's temporary
    folders is validated; a test that damages one on purpose is marked ``damaged_results``."""
    yield
    base = tmp_path_factory.getbasetemp()
    found = {}
    for root, _dirs, files in os.walk(base):
        if "results.json" in files:
            path = os.path.join(root, "results.json")
            found[path] = os.stat(path).st_mtime_ns
    fresh = [p for p, m in found.items() if _checked.get(p) != m]
    _checked.update(found)
    if request.node.get_closest_marker("damaged_results"):
        return
    problems = []
    for path in fresh:
        for p in results_problems(json.loads(Path(path).read_text())):
            problems.append(f"{path}: {p}")
    if problems:
        pytest.fail(
            "results.json does not follow harness/report/results.schema.json:\n" + "\n".join(problems[:20])
        )


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


@contextlib.contextmanager
def chromium_page(html: Path):
    """``(page, errors, requests)``: ``html`` opened offline in headless Chromium (playwright drives
    Debian's build), with the console errors and every request the page made."""
    from playwright.sync_api import sync_playwright

    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri())
        page.wait_for_load_state("networkidle")
        try:
            yield page, errors, requests
        finally:
            browser.close()
