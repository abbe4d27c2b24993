"""Export variants: the same model as ONNX graphs traded for speed.

Every variant starts from the fp32 export (``onnx/model.onnx``) and is written beside it, under the
names sentence-transformers itself uses, so ``SentenceTransformer(folder, backend="onnx",
model_kwargs={"file_name": ...})`` loads any of them:

=========  =============================  =============================================================
variant    file                           what it is
=========  =============================  =============================================================
fp32       onnx/model.onnx                the plain export (optimum), with the pooled output added
O1/O2/O3   onnx/model_O{1,2,3}.onnx       optimum's optimisation levels: basic graph optimisations;
                                          + transformer fusions (Attention, SkipLayerNorm, BiasGelu);
                                          + GELU approximation
fp16       onnx/model_O4.onnx             optimum's O4: O3 in float16 (CUDA only)
int8       onnx/model_qint8_<isa>.onnx    O2 with dynamically quantised int8 MatMul/Attention weights,
                                          settings chosen for the CPU's instruction set (CPU only)
=========  =============================  =============================================================

Every graph gets a second output, ``sentence_embedding``: the pooling (and the Normalize module,
where the model has one) computed inside the graph, so an encoder fetches one vector per text
instead of the whole ``last_hidden_state`` (a large host copy on a GPU). ``last_hidden_state`` stays
so that optimum and sentence-transformers still load the file.
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
                _optimize(Path(export_dir), "O4" if name == VariantName.FP16 else name, device, Path(tmp))
            add_pooling(Path(tmp) / target.name, Path(export_dir))
        except CandidateError:
            raise
        except Exception as e:  # noqa: BLE001 - onnx, optimum and onnxruntime raise many kinds
            raise CandidateError(
                f"building the {name} variant of {export_dir} failed: {type(e).__name__}: {e}"
            ) from None
        (Path(tmp) / target.name).replace(target)
    return target


def _optimize(export_dir: Path, level: str, device: str, out: Path) -> None:
    """optimum's ORTOptimizer at ``level`` (O1-O4) on ``onnx/model.onnx``, written to ``out``.

    It runs on the graph without the pooled output: the fusions of SkipLayerNormalization need
    onnxruntime's symbolic shape inference, which fails on the pooling nodes."""
    from optimum.onnxruntime import AutoOptimizationConfig, ORTOptimizer

    src = out / "source"
    src.mkdir()
    shutil.copy2(export_dir / "config.json", src / "config.json")
    strip_pooling(export_dir / "onnx" / "model.onnx", src / "model.onnx")
    optimizer = ORTOptimizer.from_pretrained(src, file_names=["model.onnx"])
    config = AutoOptimizationConfig.with_optimization_level(level, for_gpu=device == "cuda")
    optimizer.optimize(config, out, file_suffix=level)


def _quantize(source: Path, out: Path, isa: str) -> None:
    """onnxruntime's dynamic quantisation of MatMul and fused Attention weights.

    optimum's ORTQuantizer refuses fused graphs (shape inference does not know the com.microsoft
    ops), so the default tensor type is given here instead."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(out),
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        **quantization_settings(isa),
    )


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
