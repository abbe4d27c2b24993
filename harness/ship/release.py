"""Release artifacts and the model fingerprint that keeps embedding spaces apart.

An artifact is a folder: the exported sentence-transformers folder with the shipped export variant
as its only ``onnx/model.onnx`` (what ``harness encode`` loads), the trained torch model under
``sentence-transformers/``, a model card ``README.md`` and ``harness-artifact.json`` (fingerprint,
suite, run, metrics, gates).

The fingerprint hashes what decides a vector: the ONNX graph, the tokenizer, pooling,
normalisation and max_seq_length. Two folders with the same fingerprint embed identically.

A hybrid candidate (``<candidate>+<bm25>``, :mod:`harness.gate.hybrids`) releases its dense model so,
plus ``hybrid.json``: the BM25 settings (tokenizer, stemmer, stop words, k1, b) and the fusion chosen
on dev, which the fingerprint hashes too: ``harness encode`` then builds the BM25 index beside the
embeddings and ``harness search`` answers with the fused ranking (:mod:`harness.ship.hybrid`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from harness.core.metrics import reported
from harness.core.names import Status, VariantName
from harness.core.records import file_digest
from harness.core.variants import VARIANTS
from harness.errors import ConfigError, HarnessError
from harness.export.variants import copy_variant

MANIFEST = "harness-artifact.json"
HYBRID = "hybrid.json"  #: of a hybrid artifact: its BM25 settings and fusion
STATIC = "static"  #: of a static model's artifact: its StaticEmbedding folder (numpy serves it)


def fingerprint(folder: Path) -> str:
    from harness.core.st_folder import read_st_folder

    folder = Path(folder)
    h = hashlib.sha256()
    static = folder / STATIC
    if static.is_dir():  # a static model: its token table and tokenizer decide every vector
        for part in (static / "model.safetensors", static / "tokenizer.json", static / "modules.json"):
            h.update(file_digest(part).encode())
        return h.hexdigest()[:32]
    for part in (folder / "onnx" / "model.onnx", folder / "tokenizer.json"):
        h.update(file_digest(part).encode())
    if (folder / HYBRID).is_file():  # a hybrid ranks with BM25 as well: its settings decide the results
        h.update(file_digest(folder / HYBRID).encode())
    h.update(json.dumps(read_st_folder(folder), sort_keys=True).encode())
    return h.hexdigest()[:32]


def release(
    run_dir: Path,
    to: Path,
    candidate: str | None = None,
    force: bool = False,
) -> dict:
    """Write the chosen (default: shipped) candidate of ``run_dir`` as an artifact in ``to`` (its
    drift profile is added by :func:`harness.ship.drift_profile.add_profile`)."""
    from harness.report.document import read_results

    run_dir = Path(run_dir)
    doc = read_results(run_dir)
    name = candidate or doc.get("shipped")
    if name is None:
        raise HarnessError(
            f"{run_dir}: no candidate passed its gates, so none is shipped; name one with "
            "--candidate (and --force to release it anyway)"
        )
    cand = next((c for c in doc["candidates"] if c["name"] == name), None)
    if cand is None or cand["baseline"]:
        names = [c["name"] for c in doc["candidates"] if not c["baseline"]]
        raise ConfigError(
            f"--candidate {name!r}: not a candidate of this run (a baseline is not released; its hybrid "
            f"row is); it has {names}"
        )
    if cand["status"] != Status.PASSED and not force:
        failed = [g for g in cand["gates"] if not g["passed"]]
        raise HarnessError(
            f"{name} did not pass its gates ({cand['status']}: "
            f"{len(failed)} failed{', ' + cand['error'] if cand.get('error') else ''}); "
            "--force releases it anyway and says so in the model card"
        )
    hybrid = cand.get("hybrid_of")
    dense = hybrid["dense"] if hybrid else name  # a hybrid ships its dense model's files
    src = run_dir / "models" / dense / cand.get("model_dir", ".")  # with seeds: the seed that ships
    onnx_file = Path((cand.get("encoder") or {}).get("file") or "onnx/model.onnx").name  # the shipped variant
    static = (cand.get("encoder") or {}).get("format") == STATIC
    variant = VARIANTS.get(cand.get("variant", VariantName.FP32), VARIANTS[VariantName.FP32])
    folder = STATIC if static else variant.folder
    if not (src / "export" / folder / onnx_file).is_file():
        raise HarnessError(f"{src}/export/{folder}/{onnx_file}: the exported model is missing")
    to = Path(to)
    if to.exists() and any(to.iterdir()):
        raise ConfigError(f"--to {to}: exists and is not empty")
    tmp = to.with_name(to.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # an OpenVINO variant's IR (openvino/) comes along beside the fp32 graph, which onnxruntime-only
    # readers load
    ov = variant.engine == "openvino"
    if static:
        shutil.copytree(src / "export" / STATIC, tmp / STATIC, ignore=shutil.ignore_patterns(".*"))
    else:
        copy_variant(src / "export", "model.onnx" if ov else onnx_file, tmp, openvino=ov)
    if (src / "trained").is_dir():
        shutil.copytree(src / "trained", tmp / "sentence-transformers")
    if hybrid:
        (tmp / HYBRID).write_text(json.dumps(hybrid_settings(cand), indent=1, sort_keys=True))
    base = next(
        (c for c in doc["candidates"] if c["baseline"] and c["base_model"] == cand["base_model"]), None
    )
    manifest = {
        "fingerprint": fingerprint(tmp),
        "candidate": name,
        "suite": doc["suite"],
        "run_id": doc.get("run_id"),
        "run_dir": str(run_dir.resolve()),
        "base_model": cand["base_model"],
        "forced": cand["status"] != Status.PASSED,
        "status": cand["status"],
        "metrics": released_metrics(cand),
        "gates": cand["gates"],
        "baseline_metrics": base["metrics"] if base else None,
        "encoder": cand["encoder"],
        "variant": cand.get("variant", VariantName.FP32),
        "variant_file": onnx_file,
        "engine": "numpy" if static else variant.engine,
        "kind": cand.get("kind", "transformer"),
        "data": doc.get("data"),
        "training": doc.get("training"),
        "environment": doc.get("environment"),
        "prompts": {k: (cand["encoder"] or {}).get(k, "") for k in ("query_prompt", "document_prompt")},
        "hybrid": hybrid_settings(cand) if hybrid else None,
        "k_values": k_values(cand),
        "drift": None,  #: harness.ship.drift_profile.add_profile records its profile here
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    (tmp / "README.md").write_text(model_card(doc, cand, base, manifest))
    if to.exists():
        to.rmdir()
    tmp.rename(to)
    return manifest


def hybrid_settings(cand: dict) -> dict:
    """What a hybrid artifact serves with (``hybrid.json``): its dense row, BM25 and fusion settings."""
    f = cand["fusion"]
    return {
        "dense": cand["hybrid_of"]["dense"],
        "bm25": f["bm25"],
        "fusion": {k: f[k] for k in ("method", "rrf_k", "depth", "weight") if k in f},
        "chosen_by": f["chosen_by"],
    }


def k_values(cand: dict) -> list[int]:
    """The cut-offs of the @k metrics the run reported (``harness search --qrels`` reports the same)."""
    ks = {int(m.rsplit("@", 1)[1]) for m in cand["metrics"] if "@" in m and m.rsplit("@", 1)[1].isdigit()}
    return sorted(ks) or [1, 3, 5, 10, 100]


def released_metrics(cand: dict) -> dict:
    """The metrics of the model a release ships: with seeds, those of the seed that ships (the
    candidate's own numbers are the mean over seeds)."""
    seeds = cand.get("seeds")
    if not seeds:
        return cand["metrics"]
    return next(r["metrics"] for r in seeds["runs"] if r["seed"] == seeds["shipped"])


def model_card(doc: dict, cand: dict, base: dict | None, manifest: dict) -> str:
    primary = doc["primary_metric"]
    comp = cand.get("comparison", {}).get("baseline", {})
    lines = [f"# {cand['name']}: {doc['suite']}", ""]
    if manifest["forced"]:
        lines += [
            f"> **Released with --force: this candidate did not pass its gates ({cand['status']}).**",
            "",
        ]
    if manifest.get("kind") == "static":
        lines += [
            f"A static embedding model (a token table distilled with Model2Vec, from "
            f"{(cand.get('static') or {}).get('from', 'the base')}): it encodes with numpy, no transformer "
            "and no ONNX (`static/`, a sentence-transformers StaticEmbedding folder).",
            "",
        ]
    lines += [
        f"Fine-tuned from `{cand['base_model']}` ({cand.get('base_model_revision', '?')}) by "
        "embedding-harness, "
        f"suite `{doc['suite_file']}` (sha256 `{doc.get('suite_sha256', '')[:16]}`), run "
        f"`{doc.get('run_id')}` on "
        f"{doc['device']}. Model fingerprint `{manifest['fingerprint']}`: embeddings made by another model "
        "must not be mixed with this one's (`harness encode --check`).",
        "",
        "## Test-split metrics (through the "
        + ("static model in numpy" if manifest.get("kind") == "static" else "exported ONNX model")
        + ")",
        "",
        "| metric | this model | untuned baseline | gain | 95% CI | p |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    own = released_metrics(cand)
    for m in reported(primary):
        if m not in own:
            continue
        b = base["metrics"].get(m) if base else None
        s = comp.get(m)
        cells = [m, f"{own[m]:.4f}", "" if b is None else f"{b:.4f}"]
        cells += (
            ["", "", ""]
            if s is None
            else [f"{s['gain']:+.4f}", f"[{s['ci_low']:+.4f}, {s['ci_high']:+.4f}]", f"{s['p_value']:.4f}"]
        )
        lines.append("| " + " | ".join(cells) + " |")
    seeds = cand.get("seeds")
    if seeds and primary in seeds["mean"]:
        lines += [
            "",
            f"This model is seed {seeds['shipped']} of {len(seeds['runs'])} ({seeds['by']}). Over the seeds, "
            f"{primary} is {seeds['mean'][primary]:.4f} ± {seeds['std'][primary]:.4f} (worst "
            f"{seeds['worst'][primary]:.4f}); the gains and intervals above are those of the mean over "
            "seeds.",
        ]
    if manifest.get("hybrid"):
        h = manifest["hybrid"]
        f, b = h["fusion"], h["bm25"]
        param = (
            f"k = {f['rrf_k']}, depth {f['depth']}" if f["method"] == "rrf" else f"dense weight {f['weight']}"
        )
        lines += [
            "",
            "## Hybrid search",
            "",
            f"This release ranks by the embeddings of `{h['dense']}` fused with bm25 (bm25s {b['method']}, "
            f"k1 {b['k1']}, b {b['b']}, stemmer {b['stemmer'] or 'none'}, stop words "
            f"{b['stopwords'] or 'none'}) by {f['method']} ({param}; {h['chosen_by']}). `harness encode` "
            "builds the BM25 index beside the embeddings and `harness search` answers with the fused "
            "ranking; `hybrid.json` holds these "
            "settings, and the fingerprint covers them.",
        ]
    lines += ["", "## Gates", ""]
    lines += [
        f"- {'passed' if g['passed'] else 'FAILED'}: {g['metric']} {g['kind']} {g['threshold']}"
        f"{' vs ' + g['against'] if g.get('against') else ''}: {g['value']}"
        for g in cand["gates"]
    ] or ["- none"]
    data = doc.get("data") or {}
    tr = cand.get("training", {})
    lines += [
        "",
        "## Data and training",
        "",
        f"- data: {data.get('source')} (fingerprint `{data.get('fingerprint')}`), corpus "
        f"{data.get('corpus')} "
        f"documents, train {data.get('train_queries')} / dev {data.get('dev_queries')} / test "
        f"{data.get('test_queries')} queries",
        f"- training: {json.dumps(doc.get('training'))}",
        f"- kept: epoch {tr.get('chosen_epoch')} ({tr.get('chosen_by')}), {tr.get('pairs')} pairs",
        *(
            [f"- setting: {json.dumps(tr['setting'])} ({(tr.get('grid') or tr['search'])['by']})"]
            if tr.get("grid") or tr.get("search")
            else []
        ),
        *(
            [
                f"- this model: refit on train + dev, {tr['refit']['pairs']} pairs, {tr['refit']['epochs']} "
                "epoch(s)"
            ]
            if tr.get("refit")
            else []
        ),
        *([f"- hard negatives: {json.dumps(cand['mining']['settings'])}"] if cand.get("mining") else []),
        f"- encoder: {json.dumps(cand['encoder'])}",
        "",
        "## Library versions",
        "",
        ", ".join(f"{k} {v}" for k, v in (doc.get("environment") or {}).items() if k != "cpu"),
        "",
        *(
            [f"Speeds measured on: {cpu['model']} ({cpu['cores']} cores; {', '.join(cpu['flags'])})", ""]
            if (cpu := (doc.get("environment") or {}).get("cpu"))
            else []
        ),
    ]
    return "\n".join(lines)
