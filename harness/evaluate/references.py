"""The references of a suite (``[[references]]``) on its test split: BM25 once per suite, for every
candidate and baseline its hybrid (its dense ranking fused with BM25's), each scored by the
retrieval evaluator's own code with per-query values for the paired statistics; and untuned models
(``type = "model"``), which run as items of the suite and are evaluated exactly as baselines."""

from __future__ import annotations

import time

from harness.core.metrics import rounded
from harness.suite.schema import ReferenceTable, Suite

#: BM25 indexes of this process, by corpus and settings (a suite's candidates share one)
_INDEXES: dict[tuple, object] = {}
_INDEX_SPEED: dict[tuple, float] = {}  #: documents per second each index was built at


def _key(data, ref: ReferenceTable, split: str) -> tuple:
    corpus = data.corpus if split == "test" else data.dev_corpus
    return (
        data.fingerprint,
        split,
        corpus.height,
        tuple(corpus["id"].head(3)),
        ref.k1,
        ref.b,
        ref.stemmer,
        ref.stopwords,
    )


def bm25_scores(data, ref: ReferenceTable, split: str = "test"):
    """BM25 scores of every query of ``data``'s ``split`` (test, or dev over the dev corpus) for every
    document it retrieves from."""
    from harness.evaluate.lexical import Bm25

    corpus = data.corpus if split == "test" else data.dev_corpus
    key = _key(data, ref, split)
    if key not in _INDEXES:
        if len(_INDEXES) >= 2:
            _INDEXES.clear()  # one corpus (test and dev) at a time: an index of a large corpus is not small
        t0 = time.perf_counter()
        _INDEXES[key] = Bm25(corpus["text"].to_list(), ref.k1, ref.b, ref.stemmer, ref.stopwords)
        _INDEX_SPEED[key] = round(corpus.height / max(time.perf_counter() - t0, 1e-6), 1)
    return _INDEXES[key].scores(getattr(data, split).queries["text"].to_list())


def evaluate_bm25(suite: Suite, data, ref: ReferenceTable) -> dict:
    """``{name, type, settings, metrics, per_query, rankings, seconds}`` of a bm25 reference."""
    from harness.evaluate.ranking import rank_scores

    t0 = time.perf_counter()
    res = rank_scores(
        bm25_scores(data, ref), data.corpus["id"].to_list(), data.test, suite.evaluation.k_values
    )
    return {
        "name": ref.name,
        "type": "bm25",
        "settings": ref.settings,
        **rounded(res.metrics, res.per_query),
        "rankings": res.rankings,
        "seconds": round(time.perf_counter() - t0, 1),
        "docs_per_s": _INDEX_SPEED.get(_key(data, ref, "test")),  #: indexing the test corpus (bm25s)
    }


def evaluate_hybrids(suite: Suite, data, encoder) -> dict[str, dict]:
    """For each hybrid reference of ``suite``: the dense ranking of ``encoder`` fused with its bm25
    reference's, by the fusion chosen on dev (:mod:`harness.evaluate.fusion`), then read on test
    once: ``{of, method, settings, fusion, metrics, per_query, rankings}``."""
    from harness.evaluate.fusion import choose, fused, without_dev
    from harness.evaluate.ranking import rank_scores

    hybrids = [r for r in suite.references if r.type == "hybrid"]
    if not hybrids:
        return {}
    refs = {r.name: r for r in suite.references}
    ev = suite.evaluation

    def dense(split: str, corpus):
        return encoder.encode_queries(getattr(data, split).queries["text"].to_list()) @ (
            encoder.encode_documents(corpus["text"].to_list()).T
        )

    test = dense("test", data.corpus)
    dev = dense("dev", data.dev_corpus) if len(data.dev) else None
    out = {}
    for ref in hybrids:
        bm25 = refs[ref.of]
        if dev is not None:
            fusion = choose(
                dev,
                bm25_scores(data, bm25, "dev"),
                data.dev_corpus["id"].to_list(),
                data.dev,
                ev.k_values,
                ev.primary_metric,
                ref,
                bm25,
            )
        else:
            fusion = without_dev(ref, bm25)
        scores = fused(test, bm25_scores(data, bm25), fusion)
        res = rank_scores(scores, data.corpus["id"].to_list(), data.test, ev.k_values)
        out[ref.name] = {
            "of": ref.of,
            "method": fusion["method"],
            "settings": ref.settings,
            "fusion": fusion,
            **rounded(res.metrics, res.per_query),
            "rankings": res.rankings,
        }
    return out


def bm25_references(run) -> list[dict]:
    """Evaluate the bm25 references of ``run`` (a :class:`harness.core.suiterun.SuiteRun`) into
    ``run.references``, once per suite, in the driver (seconds); a reference that fails says why
    and the candidates still run. Returns the new entries."""
    out = []
    for ref in run.suite.references:
        if ref.type != "bm25":
            continue
        try:
            result = evaluate_bm25(run.suite, run.data, ref)
        except Exception as e:  # noqa: BLE001 - bm25s or a stemmer that fails is this reference's error
            result = {
                "name": ref.name,
                "type": ref.type,
                "settings": ref.settings,
                "metrics": {},
                "error": f"{type(e).__name__}: {e}",
            }
        run.references[ref.name] = result
        out.append(result)
    return out


def model_reference(ref: ReferenceTable, result: dict) -> dict:
    """The entry of a ``type = "model"`` reference, from its evaluation as an untuned item."""
    entry = {
        "name": ref.name,
        "type": "model",
        "settings": ref.settings,
        **{
            k: result[k]
            for k in ("metrics", "per_query", "rankings", "encoder", "variants", "timings", "error")
            if k in result
        },
    }
    entry["seconds"] = round(sum(v for k, v in result.get("timings", {}).items() if k != "docs_per_s"), 1)
    return entry


def settings_key(suite: Suite) -> list[dict]:
    """What of the references decides a model's evaluation (for the baselines' evaluation cache)."""
    # "fusion": hybrids' fusion chosen on dev (an evaluation cached before that has no `fusion`)
    return [{"fusion": "chosen on dev"}] + [vars(r) for r in suite.references]
