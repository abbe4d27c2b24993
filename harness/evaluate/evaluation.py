"""Export, variants and evaluation: one trained (or untuned) model exported to ONNX, the suite's
export variants built from it, each checked against the torch model and evaluated on the test split
by the suite's evaluators (plugins). A step whose key matches is re-used (``--resume``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.core.names import Stage, VariantName
from harness.core.suiterun import SuiteRun
from harness.errors import CandidateError, HarnessError
from harness.evaluate.rows import evaluate_encoder, model_mb, shipped_result
from harness.evaluate.test_split import TestSplitEvaluation
from harness.gate.gates import variant_drop
from harness.plugins import Plugins
from harness.results import Evaluated, VariantRow
from harness.suite.collect import Item
from harness.suite.schema import FASTEST


class Evaluation:
    """Exports and evaluates on ``device`` with the evaluators ``plugins`` registered.
    ``no_cache``: re-evaluate untuned baselines even when an identical evaluation is cached;
    ``progress_bars``: show encoding progress."""

    def __init__(self, plugins: Plugins, device: str, no_cache: bool = False, progress_bars: bool = False):
        self.plugins = plugins
        self.device = device
        self.no_cache = no_cache
        self.progress_bars = progress_bars
        self.test_split = TestSplitEvaluation(plugins)

    def suite_dims(self, run: SuiteRun) -> list[int]:
        """The truncated embedding sizes any loss of the suite is evaluated at (the baseline is too)."""
        dims: set[int] = set()
        for loss in run.suite.losses:
            spec = self.plugins.registry.losses.get(loss.type)
            dims |= set(spec.evaluation_dims(loss.options)) if spec else set()
        return sorted(dims, reverse=True)

    def export_and_evaluate(
        self,
        run: SuiteRun,
        item: Item,
        torch_dir: Path,
        work: Path,
        progress,
        keys: dict[str, str],
        dims: list[int] = (),
    ) -> Evaluated:
        """Export to ONNX, build the suite's variants (only fp32 for a baseline), check each against the
        torch model and evaluate it on the test split. The candidate's numbers are its shipped variant's;
        every variant's are in ``variants``. ``dims``: embedding sizes the shipped variant is also
        evaluated at, its embeddings truncated (Matryoshka)."""
        from harness.core import records
        from harness.export.onnx import export_onnx

        if item.model.static:  # no ONNX: its token table, in numpy
            from harness.evaluate.static import evaluate_static

            return evaluate_static(self, run, item, torch_dir, work, progress, keys, dims)
        ex = run.suite.export
        t0 = time.perf_counter()
        export_dir = work / "export"
        if not records.is_done(export_dir, keys["export"]):
            export_onnx(torch_dir, export_dir)
            records.mark_done(export_dir, keys["export"])
        export_s = time.perf_counter() - t0
        sample = run.data.corpus["text"].head(ex.check_samples).to_list()
        max_seq = run.suite.evaluation.max_seq_length or None
        reference = None
        rows: list[VariantRow] = []
        shipped: dict | None = None
        fastest = (
            not item.untuned and ex.ship == FASTEST
        )  # every variant may ship: each evaluated as if it did
        for name in [VariantName.FP32] if item.untuned else ex.built:
            is_shipped = fastest or name == (VariantName.FP32 if item.untuned else ex.shipped)
            row_file, row_key = work / "variants" / f"{name}.json", records.digest([keys["result"], name])
            try:
                row = records.load(row_file, row_key)
                if row is not None and not (run.run_dir / row["file"]).is_file():
                    row = None  # its graph was deleted: built and evaluated again
                if row is None:
                    base = None if item.untuned else run.models[item.model.name].path
                    row = self.variant(
                        run,
                        item,
                        name,
                        torch_dir,
                        export_dir,
                        sample,
                        max_seq,
                        reference,
                        progress,
                        base,
                        dims if is_shipped else (),
                        shipped=is_shipped and item.reference is None,
                    )
                    records.store(row_file, row_key, {k: v for k, v in row.items() if k != "reference"})
                else:
                    progress(
                        Stage.EVALUATED,
                        {
                            "variant": name,
                            "seconds": 0,
                            "docs_per_s": row["metrics"]["docs_per_s"],
                            "resumed": True,
                        },
                    )
            except HarnessError as e:
                if is_shipped and not fastest:
                    raise
                rows.append({"variant": name, "error": str(e), "passed": False})
                self.plugins.hook.harness_warning(message=f"{item.nodeid}: variant {name}: {e}", item=item)
                continue
            reference = row.pop("reference", None)
            if name != VariantName.FP32 and rows and "metrics" in rows[0]:
                row["drop"], row["passed"] = variant_drop(
                    rows[0]["metrics"], row["metrics"], run.suite.evaluation.primary_metric, ex.max_drop
                )
            rows.append(row)
            if is_shipped and not fastest:
                shipped = row
        shipped, choice = (
            fastest_variant(rows, ex.max_drop, ex.by_device and self.device) if fastest else (shipped, None)
        )
        if shipped is None:
            raise CandidateError(f"the shipped variant {ex.shipped} was not built")
        evaluated = shipped.pop("evaluated")
        for row in rows:
            row.pop("evaluated", None)
            row["shipped"] = row is shipped and not item.untuned
        return shipped_result(shipped, evaluated, rows, export_s, choice)

    def variant(
        self,
        run: SuiteRun,
        item: Item,
        name: str,
        torch_dir: Path,
        export_dir: Path,
        sample: list[str],
        max_seq: int | None,
        reference,
        progress,
        base: Path | None = None,
        dims=(),
        shipped: bool = False,
    ) -> dict:
        """Build, check and evaluate one variant. The first one (fp32) computes the torch ``reference``
        embeddings of ``sample``; for a candidate it also measures how far they moved from the ``base``
        model's (``export_check.embedding_change``, a guard)."""
        from harness.export.variants import build, encoder_class, made_by

        ev = run.suite.evaluation
        t0 = time.perf_counter()
        file = build(export_dir, name, self.device, calibration_texts(run, name), max_seq)
        t1 = time.perf_counter()
        encoder = encoder_class(name)(
            export_dir,
            self.device,
            file=file.name,
            batch_size=ev.batch_size,
            max_seq_length=max_seq,
            query_prompt=item.model.query_prompt,
            document_prompt=item.model.document_prompt,
            progress=self.progress_bars,
        )
        check, reference = export_check(run, name, torch_dir, encoder, sample, reference, base, self.device)
        t2 = time.perf_counter()
        progress(
            Stage.EXPORTED,
            {
                "variant": name,
                "seconds": round(t1 - t0, 1),
                "min_cosine": check["min_cosine"],
                "provider": encoder.provider,
            },
        )
        info = encoder.describe()
        evaluated, cached, _ = evaluate_encoder(self, run, item, encoder, name, dims, shipped, progress)
        t3 = time.perf_counter()
        info["file"] = os.path.relpath(info["file"], run.run_dir)
        speed_size = {"docs_per_s": evaluated["docs_per_s"], "model_mb": model_mb(file)}
        return {
            "variant": name,
            "file": info["file"],
            "provider": encoder.provider,
            "metrics": {**evaluated["metrics"], **speed_size},
            "encoder": info,
            "export_check": check,
            "made_by": made_by(name),
            "cached_from": cached["run"] if cached else None,
            "evaluated": evaluated,
            "reference": reference,
            "timings": {
                "build_s": round(t1 - t0, 1),
                "check_s": round(t2 - t1, 1),
                "evaluate_s": round(t3 - t2, 1),
            },
        }


def export_check(
    run: SuiteRun, name: str, torch_dir: Path, encoder, sample: list[str], reference, base, device: str
):
    """Variant ``name`` against the torch model on ``sample`` (the fp32 one computes the torch
    ``reference`` embeddings, and, for a candidate, how far they moved from the ``base`` model's:
    ``embedding_change``, a guard); returns the check and the reference."""
    from harness.core.variants import VARIANTS
    from harness.export.onnx import check_export, torch_embeddings
    from harness.gate.guards import embedding_change

    ex = run.suite.export
    change = None
    if reference is None:
        reference = torch_embeddings(
            torch_dir, sample, device, encoder.max_seq_length, encoder.prompts["document"]
        )
        if base is not None:
            change = embedding_change(
                torch_embeddings(base, sample, device, encoder.max_seq_length, encoder.prompts["document"]),
                reference,
            )
    exact = VARIANTS[name].exact
    check = check_export(
        reference,
        encoder,
        sample,
        ex.min_cosine if exact else ex.min_cosine_reduced,
        f"the ONNX {name} variant",
    )
    if change is not None:
        check["embedding_change"] = change
    return check, reference


#: documents a statically quantised variant calibrates on
CALIBRATION = 300


def calibration_texts(run: SuiteRun, variant: str) -> list[str] | None:
    """The documents a statically quantised ``variant`` (openvino-int8) calibrates on: a seeded sample of
    the corpus documents relevant to no test or dev query (the test split never tunes a variant);
    None for a variant that does not calibrate."""
    import random

    from harness.core.variants import VARIANTS

    if VARIANTS[variant].engine != "openvino":
        return None

    held = set(run.data.test.qrels["doc_id"]) | set(run.data.dev.qrels["doc_id"])
    texts = [t for d, t in run.data.corpus.select("id", "text").iter_rows() if d not in held and t.strip()]
    random.Random(run.suite.data.seed).shuffle(texts)
    return texts[:CALIBRATION]


def fastest_variant(
    rows: list[dict], max_drop: float, default_of: str | None = None
) -> tuple[dict | None, str]:
    """``export.ship = "fastest"``: of the variants evaluated in this run, the one that encoded the test
    corpus fastest among those within ``max_drop`` of fp32 (fp32 always is); and why, in words
    (``default_of``: the device whose default variants these are, the suite having set none)."""
    usable = [r for r in rows if "metrics" in r and (r["variant"] == VariantName.FP32 or r.get("passed"))]
    if not usable:
        return None, ""
    best = max(usable, key=lambda r: r["metrics"]["docs_per_s"])
    others = ", ".join(
        f"{r['variant']} {r['metrics']['docs_per_s']}" for r in rows if "metrics" in r and r is not best
    )
    dropped = [r["variant"] for r in rows if r not in usable]
    why = (
        f"{best['variant']}: the fastest variant within max_drop {max_drop} of fp32 on this machine "
        f"({best['metrics']['docs_per_s']} docs/s; {others or 'no other variant'})"
        + (f"; {', '.join(dropped)} lost more or failed" if dropped else "")
        + (
            f" ([export] variants unset: {' and '.join(r['variant'] for r in rows)}, the {default_of} "
            "default)"
            if default_of
            else ""
        )
    )
    return best, why
