"""A held-out test split made from data that has none, so that nothing of it leaks into training.

Pairs are grouped by connected component of the query-document graph: a query, every document
relevant to it, every other query those documents are relevant to, and so on (``group_by =
"query"``: each query alone, cheaper, but a document may then be relevant in both splits). A group
is wholly train or wholly test, chosen by a hash of its texts: the hash of the group's first query
(in text order), compared with ``test_fraction``. Adding rows moves no group that they do not join,
so a split does not shift when data grows. :func:`make_test_split` applies it to a pair source's
data that came without a test split.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

from harness.core.names import GroupBy

DEFAULT_TEST_FRACTION = 0.15


def text_hash(text: str) -> float:
    """A stable number in [0, 1) for ``text``."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:13], 16) / 16**13


def groups(
    queries: Iterable[str], edges: Iterable[tuple[str, str]], group_by: str = GroupBy.COMPONENT
) -> dict[str, str]:
    """Each query's group: the first query of its component in text order (``edges``: (query, document) of
    relevant pairs; queries and documents are keys, e.g. normalised texts)."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for q in queries:
        find(("q", q))
    if group_by == GroupBy.COMPONENT:
        for q, d in edges:
            a, b = find(("q", q)), find(("d", d))
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[tuple[str, str], list[str]] = {}
    for node in list(parent):
        if node[0] == "q":
            members.setdefault(find(node), []).append(node[1])
    out = {}
    for qs in members.values():
        lead = min(qs)  # by text, not by hash: the smallest of several hashes would favour test
        for q in qs:
            out[q] = lead
    return out


def grouped_split(
    queries: Iterable[str],
    edges: Iterable[tuple[str, str]],
    test_fraction: float,
    group_by: str = GroupBy.COMPONENT,
) -> tuple[set[str], dict]:
    """The test queries, and what the split did (``method``, group counts, the test share)."""
    group = groups(queries, edges, group_by)
    sizes: dict[str, int] = {}
    for lead in group.values():
        sizes[lead] = sizes.get(lead, 0) + 1
    test = {q for q, lead in group.items() if text_hash(lead) < test_fraction}
    n = len(group)
    largest = max(sizes.values(), default=0)
    info = {
        "method": f"grouped by {'connected component' if group_by == 'component' else 'query'}, hashed",
        "group_by": group_by,
        "test_fraction": test_fraction,
        "groups": len(sizes),
        "largest_group_queries": largest,
        "test_queries": len(test),
        "train_queries": n - len(test),
        "test_share": round(len(test) / n, 4) if n else 0.0,
    }
    return test, info


def split_warnings(info: dict) -> list[str]:
    """What the user should know about a made split: a test share far from the one asked for."""
    out = []
    want, got = info["test_fraction"], info["test_share"]
    if want and abs(got - want) > max(0.05, want / 3):
        n = info["test_queries"] + info["train_queries"]
        if info["group_by"] == GroupBy.COMPONENT and info["largest_group_queries"] > max(1, n // 50):
            why = (
                f"; the largest group holds {info['largest_group_queries']} of the {n} queries (documents "
                "shared "
                'by many queries join them into one group): group_by = "query" splits finer'
            )
        else:  # many small groups: a hash draw's share varies by about sqrt(f(1-f)/groups)
            why = (
                f"; with {info['groups']} groups a share drawn by hash varies by about "
                f"±{200 * math.sqrt(want * (1 - want) / max(1, info['groups'])):.0f} points: more queries "
                "bring "
                "it closer"
            )
        out.append(
            f"the test split holds {got:.0%} of the queries, not the {want:.0%} asked for (groups are "
            f"assigned whole, by hash){why}"
        )
    return out


def make_test_split(data, train: str, test: str, fraction: float | None, group_by: str):
    """``data`` (a :class:`harness.api.RetrievalData` whose judgements are all in split ``train``)
    with the split ``test`` made from it; ``split_info`` and ``warnings`` say how. Documents are
    compared as normalised texts, so near-copies of a document cannot straddle the split."""
    from dataclasses import replace

    import polars as pl

    from harness.data.tables import normalise
    from harness.errors import DataError

    fraction = DEFAULT_TEST_FRACTION if fraction is None else fraction
    qrels = data.qrels[train]
    texts = dict(data.corpus.select("id", "text").iter_rows())
    qtexts = dict(data.queries.select("id", "text").iter_rows())
    key = {q: normalise(qtexts.get(q, q)) for q in set(qrels["query_id"].to_list())}  # case and spacing aside
    queries = sorted(set(key.values()))
    relevant = [(key[q], normalise(texts.get(d, d))) for q, d, s in qrels.iter_rows() if s > 0]
    test_keys, info = grouped_split(queries, relevant, fraction, group_by)
    test_ids = {q for q, k in key.items() if k in test_keys}
    if not test_keys or len(test_keys) == len(queries):
        side = "test" if not test_keys else "train"
        raise DataError(
            f"the test split made from {len(queries)} queries left the {side} split empty "
            f"({info['groups']} group(s), the largest of {info['largest_group_queries']} queries): add "
            'queries, change data.test_fraction, set data.group_by = "query", or give the data a split'
        )
    held = pl.col("query_id").is_in(pl.Series(sorted(test_ids), dtype=pl.Utf8).implode())
    made = {**data.qrels, train: qrels.filter(~held), test: qrels.filter(held)}
    return replace(
        data,
        qrels=made,
        split_info={**data.split_info, **info},
        warnings=list(data.warnings) + split_warnings(info),
    )
