"""The ``querygen`` pair source: for each document of a corpus that has no queries, queries written
by a chat model behind an OpenAI-compatible endpoint, cached so that a re-run asks for nothing
(the corpus, the split and the report as for ``selfsup``: :mod:`harness.builtin.unlabeled`)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from harness import hookimpl
from harness.api import (
    Option,
    json_lines,
)
from harness.builtin.unlabeled import COMMON, Doc, Unlabeled
from harness.errors import DataError

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
    register(QueryGeneration())
