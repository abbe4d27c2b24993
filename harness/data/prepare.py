"""From a pair source's data to the three splits a run uses: train, dev (carved from train) and test.

The test split is only ever evaluated once per candidate, for the final numbers; the dev split,
carved from the training queries, is what chooses epochs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import polars as pl

from harness.api import RetrievalData, Split
from harness.core.names import GroupBy
from harness.data.cleaning import clean, summary_lines
from harness.data.split import make_test_split
from harness.errors import DataError
from harness.suite.schema import DataTable


@dataclass
class Prepared:
    corpus: pl.DataFrame  #: id, text
    train: Split
    dev: Split
    test: Split
    dev_corpus: pl.DataFrame  #: what the dev split retrieves from
    fingerprint: str
    warnings: list[str] = field(default_factory=list)
    train_documents: pl.DataFrame | None = None  #: see RetrievalData.train_documents
    cleaning: dict = field(default_factory=dict)  #: what :func:`harness.data.cleaning.clean` did
    split_info: dict = field(
        default_factory=dict
    )  #: how the source made the test split (RetrievalData.split_info)

    def documents(self) -> dict[str, str]:
        """Every document text by id: the corpus and the training-only documents."""
        docs = dict(self.corpus.select("id", "text").iter_rows())
        if self.train_documents is not None:
            docs.update(self.train_documents.iter_rows())
        return docs

    def train_negatives(self) -> dict[str, list[str]]:
        """Negatives given with the data: ``{train query id: [document texts]}`` from the train split's
        judgements with score 0 (a document also relevant to the query is never one)."""
        zero = self.train.qrels.filter(pl.col("score") == 0)
        if zero.height == 0:
            return {}
        docs = self.documents()
        positive = set(self.train.qrels.filter(pl.col("score") > 0).select("query_id", "doc_id").iter_rows())
        out: dict[str, list[str]] = {}
        for q, d, _ in zero.iter_rows():
            if (q, d) not in positive and d in docs:
                out.setdefault(q, []).append(docs[d])
        return out

    def train_pairs(self) -> tuple[list[str], list[str]]:
        """(anchors, positives) texts, one per relevant (query, document) judgement of train."""
        docs = self.documents()
        queries = dict(self.train.queries.select("id", "text").iter_rows())
        anchors, positives = [], []
        for q, d, s in self.train.qrels.iter_rows():
            if s > 0 and q in queries and d in docs:
                anchors.append(queries[q])
                positives.append(docs[d])
        return anchors, positives

    def with_dev_in_train(self) -> Prepared:
        """The data of a refit (``training.refit``): the dev queries join the training ones and the dev
        split is empty. Test is untouched; the fingerprint says which of the two this is."""
        train = Split(
            "train",
            pl.concat([self.train.queries, self.dev.queries]),
            pl.concat([self.train.qrels, self.dev.qrels]),
        )
        dev = Split("dev", self.dev.queries.clear(), self.dev.qrels.clear())
        return replace(self, train=train, dev=dev, fingerprint=f"{self.fingerprint}+dev-in-train")

    def stats(self) -> dict:
        return {
            "corpus": self.corpus.height,
            "dev_corpus": self.dev_corpus.height,
            **{f"{s.name}_queries": len(s) for s in (self.train, self.dev, self.test)},
            **{
                f"{s.name}_qrels": s.qrels.filter(pl.col("score") > 0).height
                for s in (self.train, self.dev, self.test)
            },
            "train_negatives": self.train.qrels.filter(pl.col("score") == 0).height,
        }


def _dev_queries(train: Split, n: int, seed: int, group_by: str) -> set[str]:
    """About ``n`` training queries for dev, carved whole groups at a time (:func:`split.groups`: a
    query with every query that shares a relevant document, transitively), so that no dev query's
    relevant document is a training positive and dev rewards what generalises, not what is
    remembered. Groups are taken in a seeded order until ``n`` is reached."""
    from harness.data.split import groups

    if n <= 0:
        return set()
    edges = [(q, d) for q, d, s in train.qrels.iter_rows() if s > 0]
    group = groups(train.queries["id"].to_list(), edges, group_by)
    members: dict[str, list[str]] = {}
    for q, lead in group.items():
        members.setdefault(lead, []).append(q)
    leads = [lead for lead in _sample(list(members), len(members), seed) if len(members[lead]) <= n]
    out: set[str] = set()
    for lead in leads:
        if len(out) >= n:
            break
        if len(out) + len(members[lead]) <= n + max(1, n // 10):
            out.update(members[lead])
    if not out:  # one group holds them all: queries one by one, with the warning prepare gives
        return set(_sample(list(group), n, seed))
    return out


def _sample(ids: list[str], n: int, seed: int) -> list[str]:
    ids = sorted(ids)
    random.Random(seed).shuffle(ids)
    return ids[:n]


def _restrict(split: Split, query_ids) -> Split:
    keep = pl.Series(sorted(query_ids), dtype=pl.Utf8).implode()
    return Split(
        split.name,
        split.queries.filter(pl.col("id").is_in(keep)),
        split.qrels.filter(pl.col("query_id").is_in(keep)),
    )


def _check_frame(df: pl.DataFrame, what: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{what} lacks the column(s) {missing}; it has {df.columns}")


def _examples(values) -> str:
    values = sorted(map(str, values))
    return ", ".join(repr(v) for v in values[:3]) + (", ..." if len(values) > 3 else "")


def check(data: RetrievalData, train_split: str, test_split: str) -> list[str]:
    """Every error in ``data``, at once: duplicate ids, judgements of unknown queries or documents,
    empty splits. (Overlaps between train and test are warnings, see :func:`prepare`.)"""
    errors = []
    for what, frame in (("document", data.corpus), ("query", data.queries)):
        dups = frame.filter(pl.col("id").is_duplicated())["id"].unique()
        if dups.len():
            errors.append(f"{dups.len()} {what} ids occur more than once (e.g. {_examples(dups)})")
    query_ids, doc_ids = data.queries["id"].implode(), data.corpus["id"].implode()
    train_doc_ids = (
        pl.concat([data.corpus["id"], data.train_documents["id"]]).implode()
        if data.train_documents is not None
        else doc_ids
    )
    for name in (train_split, test_split):
        if name not in data.qrels:
            errors.append(f"split {name!r} not found; the data has {sorted(data.qrels)}")
            continue
        qrels = data.qrels[name]
        known_docs = train_doc_ids if name == train_split else doc_ids
        for col, ids, what in (("query_id", query_ids, "queries"), ("doc_id", known_docs, "documents")):
            unknown = qrels.filter(~pl.col(col).is_in(ids))[col].unique()
            if unknown.len():
                errors.append(
                    f"qrels of split {name!r} name {unknown.len()} {what} that do not exist "
                    f"(e.g. {_examples(unknown)})"
                )
        if data.split(name).queries.height == 0:
            errors.append(f"split {name!r} has no queries with a relevant document")
    return errors


def prepare(data: RetrievalData, cfg: DataTable) -> Prepared:
    """Split ``data`` as the suite's ``[data]`` table says, applying its ``limit_*`` keys.

    Errors (:class:`DataError`, every one at once): missing columns, duplicate ids, judgements of
    unknown queries or documents, empty splits. Warnings (``Prepared.warnings``): queries in both
    train and test (dropped from training), test queries' relevant documents that are training
    positives too (kept: a shared corpus is normal, but the report should say so)."""
    _check_frame(data.corpus, "corpus", ("id", "text"))
    _check_frame(data.queries, "queries", ("id", "text"))
    if data.train_documents is not None:
        _check_frame(data.train_documents, "train_documents", ("id", "text"))
    for name, q in data.qrels.items():
        _check_frame(q, f"qrels[{name}]", ("query_id", "doc_id", "score"))
    if cfg.test_split not in data.qrels and set(data.qrels) == {cfg.train_split}:  # no test split: make one
        data = make_test_split(data, cfg.train_split, cfg.test_split, cfg.test_fraction, cfg.group_by)
    elif cfg.test_fraction is not None:
        data.warnings.append(
            f"data.test_fraction = {cfg.test_fraction} is not used: the data has its own "
            f"{cfg.test_split!r} split"
        )
    errors = check(data, cfg.train_split, cfg.test_split)
    if errors:
        raise DataError(errors)
    data, cleaning = clean(data, cfg.train_split)
    for name in (cfg.train_split, cfg.test_split):
        if data.split(name).queries.height == 0:
            raise DataError(
                f"split {name!r} has no queries with a relevant document left after cleaning "
                f"({'; '.join(summary_lines(cleaning)) or 'nothing dropped'})"
            )
    train_all, test = data.split(cfg.train_split), data.split(cfg.test_split)
    warnings = list(data.warnings)
    overlap = set(train_all.queries["id"]) & set(test.queries["id"])
    if overlap and overlap == set(train_all.queries["id"]):
        raise DataError(
            f"every one of the {len(overlap)} {train_all.name!r} queries is also a {test.name!r} query, so "
            "nothing is left to train on that is not tested: the train and test judgements are the same "
            "queries (the same file twice?)"
        )
    if overlap:
        warnings.append(
            f"{len(overlap)} queries are in both {train_all.name!r} and {test.name!r}; "
            f"they are dropped from training (e.g. {sorted(overlap)[:3]})"
        )
        train_all = _restrict(train_all, set(train_all.queries["id"]) - overlap)
    shared = set(train_all.qrels.filter(pl.col("score") > 0)["doc_id"]) & set(
        test.qrels.filter(pl.col("score") > 0)["doc_id"]
    )
    if shared:
        warnings.append(
            f"{len(shared)} documents relevant to {test.name!r} queries are also training positives "
            f"(e.g. {_examples(shared)}): the model sees them in training; gains on the queries that "
            "need them may partly be memory"
        )

    corpus = data.corpus.select("id", "text")
    if cfg.limit_test_queries and len(test) > cfg.limit_test_queries:
        test = _restrict(test, _sample(list(test.queries["id"]), cfg.limit_test_queries, cfg.seed))
    train_ids = list(train_all.queries["id"])
    n_dev = round(len(train_ids) * cfg.dev_fraction)
    dev_ids = _dev_queries(train_all, n_dev, cfg.seed + 1, cfg.group_by)
    if dev_ids and cfg.group_by == GroupBy.COMPONENT:
        positives = train_all.qrels.filter(pl.col("score") > 0)
        in_dev = pl.col("query_id").is_in(pl.Series(sorted(dev_ids), dtype=pl.Utf8).implode())
        dev_docs, rest = (set(positives.filter(x)["doc_id"]) for x in (in_dev, ~in_dev))
        if dev_docs & rest:
            warnings.append(
                f"the dev split could not keep its groups whole (one group of queries sharing documents "
                f"holds more than {n_dev} of them): {len(dev_docs & rest)} documents relevant to dev "
                "queries are training positives, so dev may reward memory"
            )
    train = _restrict(train_all, set(train_ids) - dev_ids)
    train.name = "train"
    dev = _restrict(train_all, dev_ids)
    dev.name = "dev"
    if cfg.limit_train_pairs:
        pairs = train.qrels.filter(pl.col("score") > 0)
        if pairs.height > cfg.limit_train_pairs:
            keep = pairs.sample(cfg.limit_train_pairs, seed=cfg.seed, shuffle=True)
            kept = keep["query_id"].implode()
            negatives = train.qrels.filter((pl.col("score") == 0) & pl.col("query_id").is_in(kept))
            train = Split(
                "train", train.queries.filter(pl.col("id").is_in(kept)), pl.concat([keep, negatives])
            )
    if cfg.limit_corpus and corpus.height > cfg.limit_corpus:
        judged = set().union(*(s.qrels["doc_id"] for s in (train, dev, test)))
        others = [d for d in corpus["id"] if d not in judged]
        keep_ids = judged | set(_sample(others, max(0, cfg.limit_corpus - len(judged)), cfg.seed + 2))
        corpus = corpus.filter(pl.col("id").is_in(pl.Series(sorted(keep_ids), dtype=pl.Utf8).implode()))
    doc_ids = set(corpus["id"])
    extra = data.train_documents.select("id", "text") if data.train_documents is not None else None
    for s in (train, dev, test):
        known = doc_ids | set(extra["id"]) if extra is not None and s is not test else doc_ids
        unknown = s.qrels.filter(~pl.col("doc_id").is_in(pl.Series(sorted(known), dtype=pl.Utf8).implode()))
        if unknown.height:
            raise DataError(
                f"{unknown.height} judgements of split {s.name!r} name documents that are not in the "
                f"corpus (e.g. {unknown['doc_id'].head(3).to_list()})"
            )
    if len(train) == 0:
        raise DataError(
            f"no training queries are left after carving the dev split ({len(dev)} dev of "
            f"{len(train_ids)} training queries); lower data.dev_fraction"
        )
    warnings += small_data_warnings(corpus, test)
    dev_corpus = corpus if extra is None else extra
    if cfg.dev_corpus_size and dev_corpus.height > cfg.dev_corpus_size:
        rel = set(dev.qrels["doc_id"])
        others = [d for d in dev_corpus["id"] if d not in rel]
        keep_ids = rel | set(_sample(others, max(0, cfg.dev_corpus_size - len(rel)), cfg.seed + 3))
        dev_corpus = dev_corpus.filter(
            pl.col("id").is_in(pl.Series(sorted(keep_ids), dtype=pl.Utf8).implode())
        )
    return Prepared(
        corpus,
        train,
        dev,
        test,
        dev_corpus,
        data.fingerprint,
        warnings,
        extra,
        cleaning,
        dict(data.split_info),
    )


#: fewer test queries than this give numbers (and intervals) that say little
FEW_TEST_QUERIES = 30


def small_data_warnings(corpus: pl.DataFrame, test: Split) -> list[str]:
    """Data that runs but should not be trusted as it is: a tiny test split, documents without text."""
    out = []
    if len(test) < FEW_TEST_QUERIES:
        out.append(
            f"the {test.name!r} split has only {len(test)} quer{'y' if len(test) == 1 else 'ies'} (fewer "
            "than "
            f"{FEW_TEST_QUERIES}): its metrics and their intervals say little; hold out more queries"
        )
    empty = corpus.filter(pl.col("text").str.strip_chars() == "")["id"]
    if empty.len():
        out.append(
            f"{empty.len()} documents have no text (e.g. {_examples(empty)}): they can only be found by "
            "chance; fix the corpus or drop them"
        )
    return out
