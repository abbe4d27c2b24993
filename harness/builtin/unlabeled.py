"""Pairs for a corpus that has no queries: ``selfsup`` (from the documents themselves) here, and
``querygen`` (queries written by a chat model behind an OpenAI-compatible endpoint) in
:mod:`harness.builtin.querygen`, both on the :class:`Unlabeled` base below.

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


@hookimpl
def harness_register_pair_sources(register):
    register(SelfSupervised())
