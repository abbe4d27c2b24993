"""Pairs for a corpus that has no queries: ``selfsup`` (from the documents themselves) and
``querygen`` (queries written by a chat model behind an OpenAI-compatible endpoint).

Both read a corpus of JSON lines (``_id`` or ``id``, ``text``, optional ``title``; a BEIR
``corpus.jsonl`` as it is). The test split is either labelled (``queries`` + ``qrels``: a BEIR
queries file and a ``query-id<TAB>corpus-id<TAB>score`` file, e.g. fifty queries a domain expert
wrote) or, without labels, made the same way as the training pairs from ``holdout`` of the
documents, which are then never trained on. A self-made test measures the proxy task, not your
users' questions: the report says so.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from harness import hookimpl
from harness.api import (
    LoadContext,
    Option,
    PairSource,
    RetrievalData,
    fingerprint,
    json_lines,
    qrels_frame,
    suite_path,
)
from harness.errors import DataError

TEXT = {"id": pl.Utf8, "text": pl.Utf8}


@dataclass
class Doc:
    id: str
    title: str
    body: str

    @property
    def text(self) -> str:
        return f"{self.title} {self.body}".strip() if self.title else self.body


def read_corpus(path: Path) -> list[Doc]:
    docs, seen = [], set()
    for n, obj in json_lines(path):
        doc_id = obj.get("_id", obj.get("id"))
        if doc_id is None or not isinstance(obj.get("text"), str):
            raise DataError(f"{path}:{n}: expected '_id' (or 'id') and a string 'text'")
        if str(doc_id) in seen:
            raise DataError(f"{path}:{n}: id {doc_id!r} occurs twice")
        seen.add(str(doc_id))
        docs.append(Doc(str(doc_id), str(obj.get("title") or "").strip(), obj["text"].strip()))
    if not docs:
        raise DataError(f"{path}: no documents")
    return docs


#: the options both sources share
COMMON = {
    "corpus": Option(
        str,
        None,
        "JSON-lines corpus (_id or id, text, optional title), relative to the suite",
        required=True,
        path="file",
    ),
    "queries": Option(
        str, None, "labelled test queries (JSON lines: _id, text); with qrels, the test split", path="file"
    ),
    "qrels": Option(
        str,
        None,
        "labelled test judgements (TSV: query-id, corpus-id, score; a header line is "
        "recognised by its score)",
        path="file",
    ),
    "holdout": Option(
        float, 0.1, "without labels: share of documents whose made-up pairs are the test split"
    ),
    "max_docs": Option(int, 0, "make training pairs from at most this many documents (0: all)"),
    "pair_seed": Option(int, 0, "seed of the holdout and max_docs samples and of the sentence choice"),
}


class Unlabeled(PairSource):
    """The shared half: corpus, labelled or held-out test, and ``RetrievalData`` assembly.
    Subclasses turn documents into ``(query, positive)`` pairs, ``positive`` ``None`` for the
    document itself or a text (the document with the query cut out of it)."""

    def pairs(
        self, docs: list[Doc], options: dict, ctx: LoadContext, test: bool, corpus: list[Doc]
    ) -> list[tuple[Doc, str, str | None]]:
        """Pairs made from ``docs`` (the split's documents; ``corpus``: all of them)."""
        raise NotImplementedError  # pragma: no cover

    def extra_warnings(self) -> list[str]:
        return []

    @staticmethod
    def path(options: dict, key: str, ctx: LoadContext) -> Path:
        """A file option, relative to the suite; environment variables are expanded
        (``${HARNESS_DATA_DIR}/...``), and a path made from one is relative to the working folder."""
        try:
            path = suite_path(ctx.suite_dir, options[key])
        except DataError as e:
            raise DataError(f"data.{key}: {e}") from None
        if not path.is_file():
            raise DataError(f"data.{key}: {path}: no such file")
        return path

    def load(self, options, ctx):
        corpus_file = self.path(options, "corpus", ctx)
        docs = read_corpus(corpus_file)
        files = [corpus_file]
        labelled = options.get("queries") or options.get("qrels")
        if labelled and not (options.get("queries") and options.get("qrels")):
            raise DataError("data.queries and data.qrels: give both (the labelled test split) or neither")
        if not 0 <= options["holdout"] < 1:
            raise DataError(f"data.holdout: expected a number in [0, 1), got {options['holdout']}")
        rng = random.Random(options["pair_seed"])
        order = sorted(docs, key=lambda d: d.id)
        rng.shuffle(order)
        held = [] if labelled else order[: max(1, round(len(order) * options["holdout"]))]
        held_ids = {d.id for d in held}
        train_docs = [d for d in order if d.id not in held_ids]
        if options["max_docs"]:
            train_docs = train_docs[: options["max_docs"]]
        text = {d.id: d.text for d in docs}
        queries, qrels, extra = {}, {"train": [], "test": []}, {}
        for split, chosen in (("train", train_docs), ("test", held)):
            if not chosen:
                continue
            for n, (doc, query, positive) in enumerate(
                self.pairs(chosen, options, ctx, split == "test", docs)
            ):
                qid = f"{split}-{n}"
                queries[qid] = query
                if positive is None:
                    qrels[split].append((qid, doc.id, 1))
                elif split == "train":  # the cut passage is a training document only
                    extra[f"{doc.id}#{n}"] = positive
                    qrels[split].append((qid, f"{doc.id}#{n}", 1))
                else:  # held out: the corpus holds the document without its query
                    text[doc.id] = positive
                    qrels[split].append((qid, doc.id, 1))
        warnings = self.extra_warnings()
        if labelled:
            from harness.builtin.beir import read_jsonl, read_qrels

            qfile, rfile = self.path(options, "queries", ctx), self.path(options, "qrels", ctx)
            files += [qfile, rfile]
            labelled_queries = read_jsonl(qfile, {"id": "_id", "text": "text"})
            queries.update(zip(labelled_queries["id"].to_list(), labelled_queries["text"].to_list()))
            test = read_qrels(rfile)
        else:
            test = qrels_frame(qrels["test"])
            warnings.append(
                f"no labelled test queries (data.queries, data.qrels): the test split is {len(held)} "
                f"held-out documents' made-up queries, a proxy for your users' questions"
            )
        if not qrels["train"]:
            raise DataError(
                f"{corpus_file}: no training pairs could be made from {len(train_docs)} documents"
            )
        return RetrievalData(
            corpus=pl.DataFrame({"id": list(text), "text": list(text.values())}, schema=TEXT),
            queries=pl.DataFrame({"id": list(queries), "text": list(queries.values())}, schema=TEXT),
            qrels={"train": qrels_frame(qrels["train"]), "test": test},
            fingerprint=fingerprint(files)
            + "-"
            + hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8],
            description=f"{self.name} pairs from {corpus_file}",
            train_documents=pl.DataFrame({"id": list(extra), "text": list(extra.values())}, schema=TEXT)
            if extra
            else None,
            warnings=warnings,
        )


# --- self-supervised ---------------------------------------------------------------------------

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


class SelfSupervised(Unlabeled):
    name = "selfsup"
    description = (
        "pairs from an unlabelled corpus itself: title -> body, a sentence -> its passage (inverse cloze)"
    )
    options = {
        **COMMON,
        "pairs": Option(
            str,
            "both",
            "title: a document's title finds its body; ict: one of its sentences finds the rest of it; both",
            choices=("title", "ict", "both"),
        ),
        "keep_sentence": Option(
            float, 0.1, "ict: share of pairs whose passage keeps the sentence (Lee et al. 2019)"
        ),
        "min_words": Option(int, 5, "ict: shortest sentence used as a query, in words"),
    }

    def pairs(self, docs, options, ctx, test, corpus):
        rng = random.Random(options["pair_seed"] + (1 if test else 0))
        out = []
        for doc in docs:
            if options["pairs"] in ("title", "both") and doc.title and doc.body:
                out.append((doc, doc.title, doc.body))
            if options["pairs"] in ("ict", "both"):
                sentences = [s for s in SENTENCE.split(doc.body) if s.strip()]
                usable = [i for i, s in enumerate(sentences) if len(s.split()) >= options["min_words"]]
                if len(sentences) >= 3 and usable:
                    i = rng.choice(usable)
                    keep = not test and rng.random() < options["keep_sentence"]
                    rest = sentences if keep else sentences[:i] + sentences[i + 1 :]
                    out.append((doc, sentences[i], " ".join(filter(None, [doc.title, *rest]))))
        if test and options["pairs"] == "both":  # one pseudo query per held-out document, or the corpus
            seen, unique = set(), []  # would hold two different cut versions of it
            for row in out:
                if row[0].id not in seen:
                    seen.add(row[0].id)
                    unique.append(row)
            out = unique
        return out


# --- query generation --------------------------------------------------------------------------

PROMPT = (
    "Write {n} different search queries that a user of this collection could type to find the "
    "document below. Use the words a user would use, not phrases copied from the document. "
    "One query per line, no numbering.\n\nDocument:\n{document}"
)


class ChatClient:
    """A minimal OpenAI-compatible chat-completions client: retries with exponential backoff (or
    the server's Retry-After) on 429, 5xx and network errors, and at most ``rate`` requests a second."""

    def __init__(
        self,
        url: str,
        model: str,
        key: str | None,
        rate: float,
        retries: int,
        timeout: float,
        temperature: float,
    ):
        self.endpoint = url.rstrip("/") + (
            "" if url.rstrip("/").endswith("/chat/completions") else "/chat/completions"
        )
        self.model, self.key, self.retries, self.timeout, self.temperature = (
            model,
            key,
            retries,
            timeout,
            temperature,
        )
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.last = 0.0
        self.requests = 0

    def _wait_turn(self) -> None:
        delay = self.last + self.interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.last = time.monotonic()

    def complete(self, prompt: str) -> str:
        import urllib.error
        import urllib.request

        body = json.dumps(
            {
                "model": self.model,
                "temperature": self.temperature,
                "messages": [{"role": "user", "content": prompt}],
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        error = ""
        for attempt in range(self.retries + 1):
            self._wait_turn()
            self.requests += 1
            retry_after = None
            try:
                req = urllib.request.Request(self.endpoint, body, headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    reply = json.loads(r.read())
                return reply["choices"][0]["message"]["content"]
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode("utf-8", "replace")
                if e.code in (401, 403):
                    raise DataError(f"{self.endpoint}: HTTP {e.code} (check the API key): {detail}") from None
                if e.code != 429 and e.code < 500:
                    raise DataError(f"{self.endpoint}: HTTP {e.code}: {detail}") from None
                error, retry_after = f"HTTP {e.code}: {detail}", e.headers.get("Retry-After")
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                error = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            except (KeyError, IndexError, TypeError, json.JSONDecodeError) as e:
                raise DataError(
                    f"{self.endpoint}: the reply is not a chat completion ({type(e).__name__}: {e})"
                ) from None
            if attempt < self.retries:
                try:
                    pause = float(retry_after) if retry_after else min(30.0, 0.5 * 2**attempt)
                except ValueError:
                    pause = min(30.0, 0.5 * 2**attempt)
                time.sleep(pause)
        raise DataError(f"{self.endpoint}: gave up after {self.retries + 1} attempts; last error {error}")


def parse_queries(content: str, n: int) -> list[str]:
    """Queries from a reply: one per line, numbering, bullets and quotes stripped, duplicates out."""
    out = []
    for line in content.splitlines():
        q = re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", line).strip().strip("\"'").strip()
        if q and q.lower() not in {x.lower() for x in out}:
            out.append(q)
    return out[:n]


class QueryCache:
    """Generated queries in a JSON-lines file, one line per (endpoint, model, prompt, document),
    appended as they come, so an interrupted generation loses nothing and a re-run asks for nothing."""

    def __init__(self, path: Path):
        self.path = path
        self.items: dict[str, list[str]] = {}
        if path.is_file():
            for _, obj in json_lines(path):
                if isinstance(obj.get("key"), str) and isinstance(obj.get("queries"), list):
                    self.items[obj["key"]] = obj["queries"]

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def add(self, key: str, queries: list[str]) -> None:
        self.items[key] = queries
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "queries": queries}) + "\n")


class QueryGeneration(Unlabeled):
    name = "querygen"
    description = "queries written by a chat model (OpenAI-compatible endpoint), cached, round-trip filtered"
    options = {
        **COMMON,
        "url": Option(
            str,
            None,
            "base URL of an OpenAI-compatible API, e.g. https://api.openai.com/v1 or "
            "http://localhost:8000/v1",
            required=True,
        ),
        "model": Option(str, None, "chat model name", required=True),
        "api_key_env": Option(
            str, "OPENAI_API_KEY", "environment variable holding the API key ('' for none)"
        ),
        "queries_per_doc": Option(int, 3, "queries asked for per document"),
        "prompt": Option(str, PROMPT, "prompt template; {document} and {n} are replaced"),
        "temperature": Option(float, 0.7, "sampling temperature"),
        "rate_limit": Option(float, 2.0, "requests per second at most (0: no limit)"),
        "retries": Option(int, 5, "retries of a request on 429, 5xx and network errors, with backoff"),
        "timeout": Option(float, 60.0, "seconds to wait for one reply"),
        "cache": Option(
            str, None, "cache file of generated queries (default: <cache>/querygen/<model>.jsonl)"
        ),
        "round_trip": Option(
            bool,
            True,
            "drop a generated query unless its own document is in its top "
            "round_trip_top_k under round_trip_model",
        ),
        "round_trip_model": Option(
            str, "sentence-transformers/all-MiniLM-L6-v2", "model of the round-trip filter"
        ),
        "round_trip_top_k": Option(int, 3, "rank its document must reach for a query to be kept"),
    }

    def __init__(self):
        self._notes: list[str] = []
        self._filter = None  # (model, document vectors), made once per load

    def extra_warnings(self):
        return list(self._notes)

    def load(self, options, ctx):
        self._notes, self._filter = [], None
        try:
            return super().load(options, ctx)
        finally:
            self._filter = None

    def pairs(self, docs, options, ctx, test, corpus):
        import os

        key = None
        if options["api_key_env"]:
            key = os.environ.get(options["api_key_env"])
            if not key:
                raise DataError(
                    f"data.api_key_env: the environment variable {options['api_key_env']} is not set "
                    '(set it, or api_key_env = "" for an endpoint without a key)'
                )
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", options["model"])
        cache = QueryCache(
            ctx.suite_dir / options["cache"]
            if options.get("cache")
            else ctx.cache_dir / "querygen" / f"{slug}.jsonl"
        )
        client = ChatClient(
            options["url"],
            options["model"],
            key,
            options["rate_limit"],
            options["retries"],
            options["timeout"],
            options["temperature"],
        )
        n = options["queries_per_doc"]
        generated: list[tuple[Doc, str]] = []
        for doc in docs:
            prompt = options["prompt"].replace("{document}", doc.text).replace("{n}", str(n))
            k = QueryCache.key(client.endpoint, options["model"], str(options["temperature"]), prompt)
            if k not in cache.items:
                cache.add(k, parse_queries(client.complete(prompt), n))
            generated += [(doc, q) for q in cache.items[k]]
        what = "test" if test else "training"
        self._notes.append(
            f"querygen: {len(generated)} {what} queries for {len(docs)} documents from "
            f"{options['model']} ({client.requests} requests, the rest from {cache.path})"
        )
        if options["round_trip"] and generated:
            generated = self._round_trip(generated, corpus, options, ctx, what)
        return [(doc, q, None) for doc, q in generated]

    def _round_trip(self, generated, docs, options, ctx, what):
        """Keep a query only if its own document is among its top k of the whole corpus ``docs``
        (Promptagator's round-trip consistency)."""
        from sentence_transformers import SentenceTransformer

        from harness.core.metrics import top_k

        if self._filter is None:
            if ctx.resolve_model is None:
                raise DataError("data.round_trip: no model resolver in this context")
            model = SentenceTransformer(
                str(ctx.resolve_model(options["round_trip_model"])), device=ctx.device
            )
            self._filter = (
                model,
                model.encode(
                    [doc.text for doc in docs],
                    batch_size=32,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                ),
            )
        model, d = self._filter
        q = model.encode(
            [q for _, q in generated], batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        )
        idx, _ = top_k(q, d, options["round_trip_top_k"])
        position = {doc.id: i for i, doc in enumerate(docs)}
        kept = [g for g, row in zip(generated, idx) if position[g[0].id] in row]
        self._notes.append(
            f"querygen: the round-trip filter dropped {len(generated) - len(kept)} of {len(generated)} "
            f"{what} queries (own document not in the top {options['round_trip_top_k']} under "
            f"{options['round_trip_model']})"
        )
        return kept


@hookimpl
def harness_register_pair_sources(register):
    register(SelfSupervised())
    register(QueryGeneration())
