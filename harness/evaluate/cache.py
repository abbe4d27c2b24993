"""A cache of untuned baselines' test-split evaluations.

An untuned model's numbers only change when its exported graph, the data or the evaluation
settings change, yet on two CPU cores they cost minutes per run. The key hashes the ONNX file's
bytes (the export is deterministic), the corpus and test split actually evaluated, every evaluation
setting, the execution provider and the harness version; anything else is a miss. ``--no-cache``
skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from harness import __version__
from harness.core.records import file_digest, write_atomic


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE_DIR", Path.home() / ".cache" / "harness"))


def evaluation_key(onnx_file: Path, data, evaluation, encoder_info: dict, prompts: dict) -> str:
    h = hashlib.sha256(file_digest(onnx_file).encode())
    settings = {
        "format": 2,
        "harness": __version__,
        "fingerprint": data.fingerprint,
        "corpus": hashlib.sha256("\x00".join(data.corpus["id"].to_list()).encode()).hexdigest(),
        "test": hashlib.sha256("\x00".join(data.test.queries["id"].to_list()).encode()).hexdigest(),
        "evaluators": evaluation.evaluators,
        "k_values": sorted(evaluation.k_values),
        "encoder": {k: v for k, v in encoder_info.items() if k != "file"},
        "prompts": prompts,
    }
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:32]


def load(key: str) -> dict | None:
    path = cache_dir() / "evaluations" / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def store(key: str, value: dict) -> None:
    folder = cache_dir() / "evaluations"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{key}.json", json.dumps(value))
    except OSError:
        pass  # a cache that cannot be written is only a slower next run
