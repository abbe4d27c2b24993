"""Code search on CoNaLa: a natural-language intent finds the Python snippet that does it.

Query = the question's rewritten intent (``intent = "original"``: the StackOverflow title as asked),
document = the snippet; every snippet of both files is in the corpus. Train = ``conala-train.json``,
test = ``conala-test.json`` (the official annotated split). Identical intents of one split are one
query with each of their snippets relevant.

The ``code`` evaluator adds what the retrieval metrics cannot see: a snippet that does the same
thing with other variable names or literals (``df.sort_values('a')`` for ``data.sort_values('b')``)
is a good answer. ``equivalent@k``: a snippet within the top k has the gold snippet's syntax tree
once names and literal values are blanked; ``success@k``: the gold snippet itself is in the top k.

Data: ``path`` option, ``$HARNESS_DATA_DIR/conala``, the cache, else the public release zip.
"""

from __future__ import annotations

import ast
import re

import polars as pl

from harness import hookimpl
from harness.api import (
    DataError,
    EvalResult,
    Evaluator,
    Option,
    PairSource,
    RetrievalData,
    fingerprint,
    json_file,
    locate,
    qrels_frame,
)

FILES = {"train": "conala-train.json", "test": "conala-test.json"}
URL = "http://www.phontron.com/download/conala-corpus-v1.1.zip"


class Conala(PairSource):
    name = "conala"
    description = "CoNaLa: natural-language intent -> Python snippet (code search)"
    options = {
        "path": Option(
            str,
            None,
            "folder with conala-train.json and conala-test.json "
            "(default: $HARNESS_DATA_DIR/conala, the cache, then the download)",
            path="folder",
        ),
        "intent": Option(
            str,
            "rewritten",
            "query text: the annotators' rewritten intent (the original where "
            "there is none) or the original question title",
            choices=("rewritten", "original"),
        ),
        "url": Option(str, URL, "the CoNaLa release zip"),
    }

    def load(self, options, ctx):
        folder = locate(
            ctx,
            "conala",
            tuple(FILES.values()),
            options.get("path"),
            {f: options.get("url") or URL for f in FILES.values()},
        )
        snippets: dict[str, str] = {}  # snippet -> doc id
        queries: dict[tuple[str, str], str] = {}  # (split, text) -> query id
        qrels: dict[str, list[tuple[str, str, int]]] = {}
        for split, name in FILES.items():
            path = folder / name
            examples = json_file(path, list, "a list of examples")
            rows = set()
            for n, ex in enumerate(examples):
                if not (
                    isinstance(ex, dict)
                    and isinstance(ex.get("snippet"), str)
                    and isinstance(ex.get("intent"), str)
                ):
                    raise DataError(
                        f"{path}: example {n}: expected an object with string 'intent' and 'snippet'"
                    )
                text = (
                    ex["intent"]
                    if options["intent"] == "original"
                    else (ex.get("rewritten_intent") or ex["intent"])
                )
                doc = snippets.setdefault(ex["snippet"], f"s{len(snippets)}")
                query = queries.setdefault((split, text.strip()), f"{split}-{len(queries)}")
                rows.add((query, doc, 1))
            qrels[split] = sorted(rows)
        return RetrievalData(
            corpus=pl.DataFrame({"id": list(snippets.values()), "text": list(snippets)}),
            queries=pl.DataFrame({"id": list(queries.values()), "text": [t for _, t in queries]}),
            qrels={s: qrels_frame(r) for s, r in qrels.items()},
            fingerprint=fingerprint([folder / f for f in FILES.values()]),
            description=f"CoNaLa annotated pairs from {folder}",
        )


class _Blank(ast.NodeTransformer):
    """Blank what a snippet may rename without changing what it does: names, arguments, literals."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id="_", ctx=node.ctx), node)

    def visit_arg(self, node):
        node.arg, node.annotation = "_", None
        return node

    def visit_Constant(self, node):
        return ast.copy_location(ast.Constant(value=type(node.value).__name__), node)


def code_shape(snippet: str) -> str:
    """A snippet's syntax tree with names and literal values blanked; for code that does not parse
    (CoNaLa has Python 2 ``print`` statements), its text with strings, numbers and spaces normalised."""
    try:
        return ast.dump(_Blank().visit(ast.parse(snippet.strip())))
    except (SyntaxError, ValueError, RecursionError):
        text = re.sub(r"'[^']*'|\"[^\"]*\"", "S", snippet)
        return re.sub(r"\s+", "", re.sub(r"\b\d+(\.\d+)?\b", "N", text))


class CodeEvaluator(Evaluator):
    name = "code"
    description = "code search: the gold snippet, or one equal to it up to names and literals, in the top k"

    def metric_names(self, k_values):
        ks = sorted({k for k in k_values if k <= 10} | {1})
        return [f"{m}@{k}" for m in ("success", "equivalent") for k in ks]

    def evaluate(self, encoder, corpus, split, k_values):
        from harness.api import top_k

        ks = sorted({k for k in k_values if k <= 10} | {1})
        ids, texts = corpus["id"].to_list(), corpus["text"].to_list()
        shape = {}  # doc index -> code shape, computed once per document that is looked at

        def shape_of(i: int) -> str:
            if i not in shape:
                shape[i] = code_shape(texts[i])
            return shape[i]

        idx, _ = top_k(
            encoder.encode_queries(split.queries["text"].to_list()), encoder.encode_documents(texts), max(ks)
        )
        relevant = split.relevant()
        position = {d: i for i, d in enumerate(ids)}
        per_query = {}
        for qid, row in zip(split.queries["id"].to_list(), idx):
            gold = relevant.get(qid, {})
            gold_shapes = {code_shape(texts[position[d]]) for d in gold if d in position}
            vals = {}
            for k in ks:
                top = row[:k]
                vals[f"success@{k}"] = float(any(ids[i] in gold for i in top))
                vals[f"equivalent@{k}"] = float(
                    any(ids[i] in gold or shape_of(i) in gold_shapes for i in top)
                )
            per_query[qid] = vals
        metrics = {
            m: sum(v[m] for v in per_query.values()) / max(len(per_query), 1) for m in self.metric_names(ks)
        }
        return EvalResult(metrics, per_query)


@hookimpl
def harness_register_pair_sources(register):
    register(Conala())


@hookimpl
def harness_register_evaluators(register):
    register(CodeEvaluator())
