"""What a sentence-transformers model folder declares about encoding: pooling, normalisation,
max_seq_length and similarity (read by the exporter, the in-graph pooling, the encoders and the
release), and the name of the pooled output an exported graph carries."""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import CandidateError

#: the output of an exported graph with the pooling (and normalisation) inside it
#: (:mod:`harness.export.pooling` adds it, :mod:`harness.encode.encoder` fetches it)
POOLED = "sentence_embedding"


def read_st_folder(folder: Path) -> dict:
    """Pooling mode, normalisation, max_seq_length and similarity of a sentence-transformers folder."""
    modules = json.loads((folder / "modules.json").read_text())
    info = {
        "pooling": "mean",
        "normalize": False,
        "max_seq_length": 512,
        "similarity": "cosine",
        "include_prompt": True,
    }
    for m in modules:
        kind = m["type"].rsplit(".", 1)[-1]
        if kind == "Transformer":
            # sentence-transformers < 5.7 keeps it in sentence_bert_config.json, newer ones in the tokenizer's
            for name, k in (
                ("sentence_bert_config.json", "max_seq_length"),
                ("tokenizer_config.json", "model_max_length"),
            ):
                cfg = folder / m.get("path", "") / name
                value = json.loads(cfg.read_text()).get(k) if cfg.is_file() else None
                if isinstance(value, int) and value < 100_000:
                    info["max_seq_length"] = value
                    break
        elif kind == "Pooling":
            cfg = json.loads((folder / m["path"] / "config.json").read_text())
            if isinstance(cfg.get("pooling_mode"), str):  # sentence-transformers >= 5.x
                modes = [cfg["pooling_mode"].removesuffix("_tokens")]
            else:  # older folders: one boolean per mode
                modes = [
                    k.removeprefix("pooling_mode_").removesuffix("_tokens")
                    for k, v in cfg.items()
                    if k.startswith("pooling_mode_") and v is True
                ]
            if len(modes) != 1 or modes[0] not in ("mean", "cls", "max", "lasttoken"):
                raise CandidateError(
                    f"{folder}: the ONNX encoder supports one of mean/cls/max/lasttoken pooling, "
                    f"this model has {modes}"
                )
            info["pooling"] = modes[0]
            info["include_prompt"] = cfg.get("include_prompt", True)
        elif kind == "Normalize":
            info["normalize"] = True
        else:
            raise CandidateError(
                f"{folder}: the ONNX encoder supports Transformer, Pooling and Normalize modules; "
                f"this model also has {kind}"
            )
    st_cfg = folder / "config_sentence_transformers.json"
    if st_cfg.is_file():
        info["similarity"] = json.loads(st_cfg.read_text()).get("similarity_fn_name") or "cosine"
    if info["similarity"] not in ("cosine", "dot"):
        raise CandidateError(f"{folder}: similarity {info['similarity']!r} is not supported (cosine or dot)")
    return info
