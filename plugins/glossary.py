"""A pair source for glossaries: a ``term<TAB>definition`` file, the smallest complete domain plugin.

Query = the term, document = its definition. Every ``test_every``-th term (sorted) is held out for
the test split, so no test term is seen in training. Use it from a suite:

    [suite]
    plugins = ["../plugins/glossary.py"]
    [data]
    source = "glossary"
    file = "my-glossary.tsv"
"""

from __future__ import annotations

import polars as pl

from harness import hookimpl
from harness.api import DataError, Option, PairSource, RetrievalData, suite_path, text_lines


class Glossary(PairSource):
    name = "glossary"
    description = "term -> definition pairs from a TSV glossary"
    options = {
        "file": Option(
            str,
            None,
            "TSV file of term<TAB>definition lines, relative to the suite",
            required=True,
            path="file",
        ),
        "test_every": Option(int, 5, "every n-th term goes to the test split"),
    }

    def load(self, options, ctx):
        path = suite_path(ctx.suite_dir, options["file"])
        rows = {}
        for n, line in text_lines(path):  # a missing file or a line that is not UTF-8: a DataError naming it
            if not line.strip():
                continue
            term, sep, definition = line.partition("\t")
            if not sep or not term.strip() or not definition.strip():
                raise DataError(f"{path}:{n}: expected 'term<TAB>definition'")
            rows.setdefault(term.strip(), definition.strip())
        terms = sorted(rows)
        ids = [f"t{i}" for i in range(len(terms))]
        split = ["test" if i % options["test_every"] == 0 else "train" for i in range(len(ids))]
        qrels = pl.DataFrame({"query_id": ids, "doc_id": ids, "score": [1] * len(ids), "split": split})
        return RetrievalData(
            corpus=pl.DataFrame({"id": ids, "text": [rows[t] for t in terms]}),
            queries=pl.DataFrame({"id": ids, "text": terms}),
            qrels={s: qrels.filter(pl.col("split") == s).drop("split") for s in ("train", "test")},
            fingerprint=__import__("hashlib").sha256(path.read_bytes()).hexdigest()[:16],
        )


@hookimpl
def harness_register_pair_sources(register):
    register(Glossary())
