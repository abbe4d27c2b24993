"""The suite's evaluators (plugins) on the test split through one encoder: the metrics, per-query
values, rankings and docs/s of a variant; its truncated sizes (Matryoshka); and for the shipped
variant its hybrids with BM25 and its out-of-domain splits."""

from __future__ import annotations

import time

from harness.core.metrics import rounded
from harness.core.suiterun import SuiteRun
from harness.errors import CandidateError, HarnessError
from harness.evaluate.references import evaluate_hybrids
from harness.plugins import Plugins


class TestSplitEvaluation:
    """Runs the evaluators ``plugins`` registered."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, plugins: Plugins):
        self.plugins = plugins

    def evaluate(self, run: SuiteRun, encoder, dims=(), shipped: bool = False) -> dict:
        """Every evaluator of the suite on the test split, through ``encoder``; then, for each of
        ``dims``, again with the embeddings truncated to that size (encoded once, not timed); for the
        ``shipped`` variant of a baseline or candidate also the suite's hybrid references of this model
        (its ranking fused with BM25's) and its out-of-domain splits."""
        from harness.encode.encoder import Truncated

        out = self.run_evaluators(run, encoder)
        if dims:
            out["dims"] = {str(d): self.run_evaluators(run, Truncated(encoder, d))["metrics"] for d in dims}
        if shipped:
            out["hybrid"] = evaluate_hybrids(run.suite, run.data, encoder)
            out["out_of_domain"] = self.out_of_domain(run, encoder)
        return out

    def out_of_domain(self, run: SuiteRun, encoder) -> dict[str, dict]:
        """The retrieval evaluator on each out-of-domain test split: ``{name: {metrics, per_query}}``."""
        retrieval = self.plugins.registry.evaluators["retrieval"]
        out = {}
        for name, data in run.out_of_domain.items():
            res = retrieval.evaluate(encoder, data.corpus, data.test, run.suite.evaluation.k_values)
            out[name] = {
                "queries": len(data.test),
                "documents": data.corpus.height,
                **rounded(res.metrics, res.per_query),
            }
        return out

    def run_evaluators(self, run: SuiteRun, encoder) -> dict:
        """The suite's evaluators through ``encoder``: metrics, per-query values, rankings and docs/s."""
        ev = run.suite.evaluation
        metrics: dict[str, float] = {}
        per_query: dict[str, dict[str, float]] = {}
        rankings: dict[str, list[str]] = {}
        start = time.perf_counter()
        for name in ev.evaluators:
            try:
                res = self.plugins.registry.evaluators[name].evaluate(
                    encoder, run.data.corpus, run.data.test, ev.k_values
                )
            except HarnessError:
                raise
            except Exception as e:  # noqa: BLE001 - a plugin's bug fails this candidate, not the run
                owner = self.plugins.registry.owner.get(("evaluators", name), "?")
                hint = " (hint: lower evaluation.batch_size)" if "out of memory" in str(e).lower() else ""
                raise CandidateError(
                    f"evaluator {name!r} (plugin {owner}) raised {type(e).__name__}: {e}{hint}"
                ) from e
            metrics.update(res.metrics)
            for q, vals in res.per_query.items():
                per_query.setdefault(q, {}).update(vals)
            rankings.update(res.rankings)
        seconds = time.perf_counter() - start
        return {
            **rounded(metrics, per_query),
            "rankings": rankings,
            "docs_per_s": round(run.data.corpus.height / max(seconds, 1e-9), 1),
        }
