"""Finance on TAT-QA: questions over annual reports find the paragraphs and tables that answer them.

Documents are every paragraph and every table (rows as ``cell | cell`` lines) of every report;
a question's relevant documents are its evidence: the paragraphs it names (``rel_paragraphs``) when
the answer comes from text, its report's table when it comes from the table, both for table-text.
The official train file is not public with gold evidence everywhere, so by default the dev file
trains and the test-gold file tests (``train_file`` / ``test_file`` change that).

The ``evidence`` evaluator measures what an analyst's retrieval needs beyond nDCG:
``report@1``: the first document comes from the question's own report (the right company and year;
most questions, "what was the revenue in 2019?", fit every report); ``full_evidence@k``: every piece
of evidence (for table-text questions, the table and the paragraphs) is in the top k.

Data: ``path`` option, ``$HARNESS_DATA_DIR/tatqa``, the cache, else the files of the TAT-QA repository.
"""

from __future__ import annotations

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

URL = "https://raw.githubusercontent.com/NExTplusplus/TAT-QA/master/dataset_raw/{file}"


def table_text(rows) -> str:
    """A table as text: non-empty cells of a row joined by `` | ``, rows by newlines."""
    lines = (" | ".join(c.strip() for c in row if isinstance(c, str) and c.strip()) for row in rows)
    return "\n".join(line for line in lines if line)


def report_of(doc_id: str) -> str:
    return doc_id.split("/", 1)[0]


class TatQA(PairSource):
    name = "tatqa"
    description = "TAT-QA: finance questions -> paragraphs and tables of annual reports"
    options = {
        "path": Option(
            str,
            None,
            "folder with the TAT-QA JSON files (default: $HARNESS_DATA_DIR/tatqa, the cache, "
            "then the download)",
            path="folder",
        ),
        "train_file": Option(str, "tatqa_dataset_dev.json", "file whose questions train"),
        "test_file": Option(str, "tatqa_dataset_test_gold.json", "file whose questions test"),
        "url": Option(str, URL, "download URL template; {file} is replaced"),
    }

    def load(self, options, ctx):
        files = {"train": options["train_file"], "test": options["test_file"]}
        url = options.get("url") or URL
        folder = locate(
            ctx,
            "tatqa",
            tuple(files.values()),
            options.get("path"),
            {f: url.format(file=f) for f in files.values()},
        )
        docs: dict[str, str] = {}
        queries: dict[str, str] = {}
        qrels: dict[str, list[tuple[str, str, int]]] = {}
        for split, name in files.items():
            path = folder / name
            reports = json_file(path, list, "a list of reports")
            rows = []
            for n, report in enumerate(reports):
                try:
                    rows += self._report(report, docs, queries, split)
                except (KeyError, TypeError, AttributeError) as e:
                    raise DataError(
                        f"{path}: report {n}: expected 'table' {{uid, table}}, 'paragraphs' "
                        f"[{{uid, order, text}}] and 'questions' [{{uid, question, answer_from, "
                        f"rel_paragraphs}}] ({type(e).__name__}: {e})"
                    ) from None
            qrels[split] = rows
        return RetrievalData(
            corpus=pl.DataFrame({"id": list(docs), "text": list(docs.values())}),
            queries=pl.DataFrame({"id": list(queries), "text": list(queries.values())}),
            qrels={s: qrels_frame(r) for s, r in qrels.items()},
            fingerprint=fingerprint([folder / f for f in files.values()]),
            description=f"TAT-QA reports from {folder}",
        )

    @staticmethod
    def _report(report: dict, docs: dict, queries: dict, split: str) -> list[tuple[str, str, int]]:
        rid = report["table"]["uid"]
        table = f"{rid}/table"
        docs[table] = table_text(report["table"]["table"])
        paragraph = {}
        for p in report["paragraphs"]:
            paragraph[str(p["order"])] = f"{rid}/p{p['order']}"
            docs[paragraph[str(p["order"])]] = p["text"].strip()
        rows = []
        for q in report["questions"]:
            evidence = set()
            if q["answer_from"] in ("table", "table-text"):
                evidence.add(table)
            if q["answer_from"] in ("text", "table-text"):
                evidence |= {paragraph[str(o)] for o in q.get("rel_paragraphs") or () if str(o) in paragraph}
            if evidence:
                qid = f"{split}/{q['uid']}"
                queries[qid] = q["question"].strip()
                rows += [(qid, d, 1) for d in sorted(evidence)]
        return rows


class EvidenceEvaluator(Evaluator):
    name = "evidence"
    description = "finance QA: first hit from the question's own report; all of its evidence in the top k"

    def metric_names(self, k_values):
        return ["report@1"] + [f"full_evidence@{k}" for k in sorted({k for k in k_values if k <= 10} | {5})]

    def evaluate(self, encoder, corpus, split, k_values):
        from harness.api import top_k

        names = self.metric_names(k_values)
        ks = [int(m.split("@")[1]) for m in names[1:]]
        ids = corpus["id"].to_list()
        idx, _ = top_k(
            encoder.encode_queries(split.queries["text"].to_list()),
            encoder.encode_documents(corpus["text"].to_list()),
            max(ks),
        )
        relevant = split.relevant()
        per_query = {}
        for qid, row in zip(split.queries["id"].to_list(), idx):
            gold = set(relevant.get(qid, {}))
            reports = {report_of(d) for d in gold}
            vals = {"report@1": float(report_of(ids[row[0]]) in reports)}
            for k in ks:
                vals[f"full_evidence@{k}"] = float(gold <= {ids[i] for i in row[:k]})
            per_query[qid] = vals
        return EvalResult(
            {m: sum(v[m] for v in per_query.values()) / max(len(per_query), 1) for m in names}, per_query
        )


@hookimpl
def harness_register_pair_sources(register):
    register(TatQA())


@hookimpl
def harness_register_evaluators(register):
    register(EvidenceEvaluator())
