"""Hybrid candidates: every baseline's and candidate's dense ranking fused with BM25's is a row of its
own (``<name>+<bm25 reference>``), with the fusion chosen on dev (:mod:`harness.evaluate.fusion`),
judged like any candidate (intervals against the baseline and every reference, the same thresholds),
ranked, and shippable (:func:`harness.gate.compare.shipped`; :mod:`harness.ship.release` writes
what serves it).

Its entry in results.json has the dense model's encoder and files, ``fusion`` (method, parameter,
BM25 settings, the dev score of every setting tried) and ``hybrid_of`` (the dense row and the
reference)."""

from __future__ import annotations

from harness.core.names import Status, hybrid_name
from harness.results import CandidateResult


def hybrid_results(result: CandidateResult, suite) -> list[CandidateResult]:
    """The hybrid rows of an evaluated baseline or candidate ``result`` (not judged yet)."""
    refs = {r.name: r for r in suite.references}
    out: list[CandidateResult] = []
    for ref_name, h in (result.get("hybrid") or {}).items():
        name = hybrid_name(result["name"], refs[ref_name], suite)
        out.append(
            {
                "name": name,
                "nodeid": f"{suite.name}::{name}",
                "base_model": result["base_model"],
                "base_model_revision": result.get("base_model_revision"),
                "resolver": result.get("resolver"),
                "baseline": False,
                "loss": result.get("loss"),
                "status": Status.ERROR,
                "gates": [],
                "timings": {},
                "hybrid_of": {"dense": result["name"], "reference": ref_name, "of": h["of"]},
                "fusion": h["fusion"],
                "metrics": h["metrics"],
                "per_query": h["per_query"],
                "rankings": h["rankings"],
                "dev": h["fusion"].get("dev"),
                "encoder": result.get("encoder"),
                "variant": result.get("variant"),
                "model_dir": result.get("model_dir", "."),
                "layers": result.get("layers"),
                "kind": result.get("kind", "transformer"),
                **({"static": result["static"]} if result.get("static") else {}),
            }
        )
    return out


def dense_dev(result: CandidateResult) -> dict | None:
    """A dense row's dev score through its shipped variant (measured beside its hybrids' fusion), or
    its training's dev score."""
    for h in (result.get("hybrid") or {}).values():
        if h.get("fusion", {}).get("dense_dev"):
            return h["fusion"]["dense_dev"]
    score = (result.get("training") or {}).get("dev_score")
    return None if score is None else {"score": score}


def passed_baseline(run, item) -> CandidateResult | None:
    """The untuned baseline ``item`` of ``run`` is judged against, when it passed."""
    base = run.results.get(f"{item.model.name}-baseline")
    return base if base and base["status"] == Status.PASSED else None


def held_against(run, base: CandidateResult | None) -> dict[str, dict]:
    """What a row is held against besides its baseline: bm25 as evaluated for the suite, and a hybrid
    reference as the untuned baseline's hybrid (is tuning better than adding BM25?)."""
    references = {n: r for n, r in run.references.items() if not r.get("error")}
    return references | ((base or {}).get("hybrid") or {})


def judged(run, item, row: CandidateResult, base: CandidateResult | None, compare) -> CandidateResult:
    """``row`` judged against ``base``, ``compare`` and the references (:func:`held_against`); a
    judgement that raises is that row's error, not the run's. ``item``: a candidate's (its diagnosis
    reads its training), None for a hybrid row."""
    import traceback

    from harness.gate.verdict import judge

    try:
        return {**row, **judge(row, base, compare, run.suite, run.data, held_against(run, base), item)}
    except Exception as e:  # noqa: BLE001 - one candidate's problem must not stop the others
        return {
            **row,
            "error": f"{type(e).__name__}: {e}",
            "status": Status.ERROR,
            "traceback": traceback.format_exc(),
        }


def judged_hybrids(run, item, result: CandidateResult, compare: dict | None) -> list[CandidateResult]:
    """The hybrid rows of a baseline's or candidate's ``result``, judged like a candidate: against the
    untuned baseline (a baseline's own hybrid: against the baseline itself), BM25 and the untuned
    hybrid, on the suite's thresholds (no diagnosis: that reads a training)."""
    base = result if item.baseline else passed_baseline(run, item)
    return [judged(run, None, row, base, compare) for row in hybrid_results(result, run.suite)]
