"""A domain plugin template: copy this file, rename the classes, and fill in ``load``/``evaluate``.

As it stands it is a complete, working plugin: the ``faq`` pair source reads a CSV of
``question,answer`` rows (a help-desk FAQ: the question is the query, the answer the document;
every ``holdout``-th question, by a hash, is a test question) and the ``first_hit`` evaluator adds
``mean_first_rank``: on average, at which rank the first right answer shows up (lower is better,
``k+1`` when it is not in the top k). See docs/plugins.md.

    harness run -p docs/plugin_template.py my-faq-suite.toml
"""

from __future__ import annotations

import csv
import hashlib
import io

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
    qrels_frame,
    suite_path,
)


class FaqSource(PairSource):
    name = "faq"  # what a suite's [data].source names
    description = "question -> answer pairs from a CSV file with the columns question, answer"
    options = {  # the keys this source accepts in [data]; any other key is a configuration error
        "file": Option(str, None, "CSV file, relative to the suite", required=True, path="file"),
        "holdout": Option(float, 0.2, "share of questions held out for the test split"),
    }

    def load(self, options, ctx) -> RetrievalData:
        path = suite_path(ctx.suite_dir, options["file"])  # ctx also has data_dir, cache_dir, splits, device
        if not path.is_file():
            raise DataError(
                f"data.file: {path}: no such file"
            )  # a DataError stops the suite, with this message
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
        answers: dict[str, str] = {}  # answer text -> document id (one document per distinct answer)
        queries, qrels = [], {"train": [], "test": []}
        for n, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), 2):  # the header is row 1
            question, answer = (row.get("question") or "").strip(), (row.get("answer") or "").strip()
            if not question or not answer:
                raise DataError(f"{path}:{n}: expected the columns question and answer, both non-empty")
            doc = answers.setdefault(answer, f"a{len(answers)}")
            qid = f"q{n}"
            queries.append((qid, question))
            digest = int(hashlib.sha1(question.encode()).hexdigest()[:8], 16) / 2**32
            qrels["test" if digest < options["holdout"] else "train"].append((qid, doc, 1))
        return RetrievalData(
            corpus=pl.DataFrame({"id": list(answers.values()), "text": list(answers)}),
            queries=pl.DataFrame(queries, schema={"id": pl.Utf8, "text": pl.Utf8}, orient="row"),
            qrels={split: qrels_frame(rows) for split, rows in qrels.items()},
            fingerprint=fingerprint([path]),  # recorded in results.json; part of the resume/cache keys
        )


class FirstHit(Evaluator):
    name = "first_hit"  # what [evaluation].evaluators names
    description = "mean rank of the first right answer (k+1 when none is in the top k)"

    def metric_names(self, k_values):  # every metric evaluate() returns: thresholds are checked against it
        return [f"mean_first_rank@{max(k_values)}"]

    def evaluate(self, encoder, corpus, split, k_values):
        from harness.api import top_k  # exact top-k by dot product, ties broken by corpus order

        k = max(k_values)
        ids = corpus["id"].to_list()
        idx, _ = top_k(
            encoder.encode_queries(split.queries["text"].to_list()),
            encoder.encode_documents(corpus["text"].to_list()),
            k,
        )
        relevant = split.relevant()  # {query id: {doc id: score}}
        per_query = {}
        for qid, row in zip(split.queries["id"].to_list(), idx):
            rank = next((r for r, i in enumerate(row, 1) if ids[i] in relevant.get(qid, {})), k + 1)
            per_query[qid] = {f"mean_first_rank@{k}": float(rank)}
        mean = sum(v[f"mean_first_rank@{k}"] for v in per_query.values()) / max(len(per_query), 1)
        return EvalResult({f"mean_first_rank@{k}": mean}, per_query)


@hookimpl
def harness_register_pair_sources(register):
    register(FaqSource())


@hookimpl
def harness_register_evaluators(register):
    register(FirstHit())
