"""Export variants: the same model as ONNX graphs traded for speed.

Every variant starts from the fp32 export (``onnx/model.onnx``) and is written beside it, under the
names sentence-transformers itself uses, so ``SentenceTransformer(folder, backend="onnx",
model_kwargs={"file_name": ...})`` loads any of them:

=========  =============================  =============================================================
variant    file                           what it is
=========  =============================  =============================================================
fp32       onnx/model.onnx                torch.onnx.export, with the pooled output added
O1/O2/O3   onnx/model_O{1,2,3}.onnx       onnxruntime's transformer optimiser at optimum's levels: basic
                                          graph optimisations; + transformer fusions (Attention,
                                          SkipLayerNorm, BiasGelu); + GELU approximation
fp16       onnx/model_O4.onnx             O4: O3 in float16 (CUDA only)
int8       onnx/model_qint8_<isa>.onnx    O2 with dynamically quantised int8 MatMul/Attention weights,
                                          settings chosen for the CPU's instruction set (CPU only)
=========  =============================  =============================================================

Every graph gets a second output, ``sentence_embedding``: the pooling (and the Normalize module,
where the model has one) computed inside the graph, so an encoder fetches one vector per text
instead of the whole ``last_hidden_state`` (a large host copy on a GPU). ``last_hidden_state`` stays
so that sentence-transformers' ONNX backend and other tools still load the file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from harness.core.machine import cpu_isa
from harness.core.names import VariantName
from harness.core.variants import VARIANTS
from harness.errors import CandidateError
from harness.export.pooling import add_pooling, strip_pooling


def quantization_settings(isa: str) -> dict:
    """Dynamic int8 settings for ``isa``.

    Without VNNI, x86 int8 GEMMs multiply u8 x s8 with ``vpmaddubsw``, whose 16-bit intermediate
    sums saturate; 7-bit weights (``reduce_range``) avoid it. Measured on AVX2 (2 cores, 600 SciFact
    abstracts): 8-bit weights gave mean cosine 0.937 to fp32, 7-bit per-channel weights 0.993 at the
    same speed. VNNI and ARM dot products accumulate in 32 bits and keep all 8 bits."""
    return {"per_channel": True, "reduce_range": isa in ("avx2", "avx512")}


def build(
    export_dir: Path,
    name: str,
    device: str,
    calibration: list[str] | None = None,
    max_seq_length: int | None = None,
) -> Path:
    """Write variant ``name`` of the fp32 export in ``export_dir`` (if not there yet) and return its
    path. ``calibration``: texts a statically quantised variant (openvino-int8) calibrates on."""
    variant = VARIANTS[name]
    out_dir = Path(export_dir) / variant.folder
    target = out_dir / variant.file()
    if target.is_file():
        return target
    if device not in variant.devices:
        raise CandidateError(
            f"variant {name} runs on {'/'.join(variant.devices)}, not on this run's device {device}"
        )
    from harness.export.onnx import quiet_libraries

    out_dir.mkdir(exist_ok=True)
    if variant.engine == "openvino":
        return _openvino_int8(Path(export_dir), target, calibration or [], max_seq_length)
    with quiet_libraries(), tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        try:
            if name == VariantName.INT8:
                source = build(export_dir, VariantName.O2, "cpu")
                _quantize(source, Path(tmp) / target.name, cpu_isa())
            else:
                _optimize(
                    Path(export_dir),
                    "O4" if name == VariantName.FP16 else name,
                    device,
                    Path(tmp) / target.name,
                )
            add_pooling(Path(tmp) / target.name, Path(export_dir))
        except CandidateError:
            raise
        except Exception as e:  # noqa: BLE001 - onnx and onnxruntime raise many kinds
            raise CandidateError(
                f"building the {name} variant of {export_dir} failed: {type(e).__name__}: {e}"
            ) from None
        (Path(tmp) / target.name).replace(target)
    return target


#: onnxruntime's optimiser model type of a transformers ``model_type`` (the encoders it knows are
#: fused as BERT; the rest keep their own name)
ORT_MODEL_TYPE = {"bart": "bart", "mbart": "bart", "marian": "bart", "gpt2": "gpt2", "t5": "t5", "vit": "vit"}

#: O1-O4 as onnxruntime's optimiser options: (opt_level, transformer fusions, GELU approximation, fp16)
LEVELS = {
    "O1": (1, False, False, False),
    "O2": (2, True, False, False),
    "O3": (2, True, True, False),
    "O4": (2, True, True, True),
}


def _optimize(export_dir: Path, level: str, device: str, out: Path) -> None:
    """onnxruntime's transformer optimiser at ``level`` (O1-O4) on ``onnx/model.onnx``, written to the
    file ``out``. The levels are those optimum named: O1 basic graph optimisations; O2 + transformer
    fusions (Attention, SkipLayerNormalization, BiasGelu); O3 + GELU approximation; O4 = O3 in
    float16 with float32 inputs and outputs.

    It runs on the graph without the pooled output: the fusions of SkipLayerNormalization need
    onnxruntime's symbolic shape inference, which fails on the pooling nodes."""
    import json

    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((export_dir / "config.json").read_text())
    model_type = ORT_MODEL_TYPE.get(config.get("model_type", ""), "bert")
    opt_level, fusions, gelu_approximation, fp16 = LEVELS[level]
    options = FusionOptions(model_type)
    options.enable_gelu_approximation = gelu_approximation
    source = out.with_name("source.onnx")
    strip_pooling(export_dir / "onnx" / "model.onnx", source)
    optimized = optimize_model(
        str(source),
        model_type,
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)),
        opt_level=opt_level,
        optimization_options=options,
        use_gpu=device == "cuda",
        only_onnxruntime=not fusions,
    )
    if fp16:
        optimized.convert_float_to_float16(keep_io_types=True)
    optimized.save_model_to_file(str(out))
    source.unlink()


def _quantize(source: Path, out: Path, isa: str) -> None:
    """onnxruntime's dynamic quantisation of MatMul and fused Attention weights.

    Shape inference does not know the com.microsoft ops of fused graphs, so the default tensor type
    is given here."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(out),
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        **quantization_settings(isa),
    )


def made_by(name: str) -> dict:
    """How variant ``name`` is made, step by step, and the versions of every library that made it
    (results.json ``variants[].made_by``)."""
    from importlib.metadata import PackageNotFoundError, version

    from harness.export.onnx import exporter

    made = exporter()
    steps = [made["exporter"]]
    level = "O4" if name == VariantName.FP16 else VariantName.O2 if name == VariantName.INT8 else name
    if level in LEVELS:
        steps.append(f"{made['optimizer']} {level}")
    if name == VariantName.INT8:
        settings = quantization_settings(cpu_isa())
        steps.append(f"{made['quantizer']}.quantize_dynamic (QInt8, {settings})")
    versions = dict(made["versions"])
    if VARIANTS[name].engine == "openvino":
        steps.append("nncf.quantize (static int8, transformer preset) -> openvino IR")
        for dist in ("openvino", "nncf"):
            try:
                versions[dist] = version(dist)
            except PackageNotFoundError:
                pass
    return {"steps": steps, "versions": versions}


def encoder_class(variant: str):
    """The encoder that runs export variant ``variant``: OnnxEncoder, or OpenVinoEncoder."""
    from harness.encode.encoder import OnnxEncoder, OpenVinoEncoder

    return OpenVinoEncoder if VARIANTS[variant].engine == "openvino" else OnnxEncoder


def _openvino_int8(
    export_dir: Path, target: Path, calibration: list[str], max_seq_length: int | None
) -> Path:
    """NNCF's static int8 quantisation (transformer preset, mixed) of the fp32 graph, the pooled output
    included, calibrated on ``calibration`` in batches as the encoder makes them; saved as OpenVINO IR."""
    from harness.encode.encoder import OnnxEncoder, openvino_missing

    why = openvino_missing()
    if why:
        raise CandidateError(why)
    if not calibration:
        raise CandidateError("the openvino-int8 variant needs calibration texts")
    import nncf
    import openvino as ov

    tokenize = OnnxEncoder(export_dir, "cpu", max_seq_length=max_seq_length, cache=False)._feeds
    texts = sorted(calibration, key=len)
    batches = [tokenize(texts[i : i + 8]) for i in range(0, len(texts), 8)]
    import contextlib
    import io
    import logging

    nncf.set_log_level(logging.ERROR)
    try:
        core = ov.Core()
        with contextlib.redirect_stdout(io.StringIO()):  # its progress bars
            quantized = nncf.quantize(
                core.read_model(str(export_dir / "onnx" / "model.onnx")),
                nncf.Dataset(batches),
                model_type=nncf.ModelType.TRANSFORMER,
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=len(batches),
            )
        tmp = target.with_name(target.stem + ".tmp.xml")
        ov.save_model(quantized, str(tmp), compress_to_fp16=False)
    except Exception as e:  # noqa: BLE001 - openvino and nncf raise many kinds
        raise CandidateError(
            f"building the openvino-int8 variant of {export_dir} failed: {type(e).__name__}: {e}"
        ) from None
    tmp.with_suffix(".bin").replace(target.with_suffix(".bin"))
    tmp.replace(target)
    return target


def copy_variant(src_dir: Path, file: str, dst_dir: Path, openvino: bool = False) -> None:
    """Copy export folder ``src_dir`` to ``dst_dir`` with ``onnx/<file>`` as its only ``onnx/model.onnx``
    (and, with ``openvino``, the ``openvino/`` folder of the OpenVINO variant)."""
    shutil.copytree(
        src_dir, dst_dir, ignore=shutil.ignore_patterns("onnx", *([] if openvino else ["openvino"]))
    )
    (dst_dir / "onnx").mkdir()
    shutil.copy2(src_dir / "onnx" / file, dst_dir / "onnx" / "model.onnx")
