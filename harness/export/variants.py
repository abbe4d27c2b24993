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

import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import CandidateError

POOLED = "sentence_embedding"
PREFIX = "harness_pool/"  #: names of the pooling nodes and constants


@dataclass(frozen=True)
class Variant:
    name: str
    help: str
    devices: tuple[str, ...]
    exact: bool  #: numerically the fp32 model (held to export.min_cosine); else reduced precision

    def file(self) -> str:
        if self.name == "fp32":
            return "model.onnx"
        if self.name == "fp16":
            return "model_O4.onnx"
        if self.name == "int8":
            return f"model_qint8_{cpu_isa()}.onnx"
        return f"model_{self.name}.onnx"


VARIANTS = {v.name: v for v in (
    Variant("fp32", "the plain ONNX export", ("cpu", "cuda"), True),
    Variant("O1", "basic graph optimisations", ("cpu", "cuda"), True),
    Variant("O2", "O1 + transformer fusions (Attention, SkipLayerNorm, BiasGelu)", ("cpu", "cuda"), True),
    Variant("O3", "O2 + GELU approximation", ("cpu", "cuda"), True),
    Variant("fp16", "O3 in float16 (optimum's O4), for CUDA", ("cuda",), False),
    Variant("int8", "O2 with dynamic int8 weights, quantised for this CPU's instruction set", ("cpu",), False),
)}


def cpu_isa() -> str:
    """The instruction set that decides the int8 settings: avx512_vnni, avx512, avx2 or arm64."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512_vnni"
    if "avx512bw" in flags:
        return "avx512"
    return "avx2"


def quantization_settings(isa: str) -> dict:
    """Dynamic int8 settings for ``isa``.

    Without VNNI, x86 int8 GEMMs multiply u8 x s8 with ``vpmaddubsw``, whose 16-bit intermediate
    sums saturate; 7-bit weights (``reduce_range``) avoid it. Measured on AVX2 (2 cores, 600 SciFact
    abstracts): 8-bit weights gave mean cosine 0.937 to fp32, 7-bit per-channel weights 0.993 at the
    same speed. VNNI and ARM dot products accumulate in 32 bits and keep all 8 bits."""
    return {"per_channel": True, "reduce_range": isa in ("avx2", "avx512")}


def build(export_dir: Path, name: str, device: str) -> Path:
    """Write variant ``name`` of the fp32 export in ``export_dir`` (if not there yet) and return its path."""
    variant = VARIANTS[name]
    onnx_dir = Path(export_dir) / "onnx"
    target = onnx_dir / variant.file()
    if target.is_file():
        return target
    if device not in variant.devices:
        raise CandidateError(f"variant {name} runs on {'/'.join(variant.devices)}, not on this run's device {device}")
    from harness.export.onnx import quiet_libraries

    with quiet_libraries(), tempfile.TemporaryDirectory(dir=onnx_dir) as tmp:
        try:
            if name == "int8":
                source = build(export_dir, "O2", "cpu")
                _quantize(source, Path(tmp) / target.name, cpu_isa())
            else:
                _optimize(Path(export_dir), "O4" if name == "fp16" else name, device, Path(tmp))
            add_pooling(Path(tmp) / target.name, Path(export_dir))
        except CandidateError:
            raise
        except Exception as e:  # noqa: BLE001 - onnx, optimum and onnxruntime raise many kinds
            raise CandidateError(f"building the {name} variant of {export_dir} failed: {type(e).__name__}: {e}") from None
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
    _strip_pooling(export_dir / "onnx" / "model.onnx", src / "model.onnx")
    optimizer = ORTOptimizer.from_pretrained(src, file_names=["model.onnx"])
    config = AutoOptimizationConfig.with_optimization_level(level, for_gpu=device == "cuda")
    optimizer.optimize(config, out, file_suffix=level)


def _quantize(source: Path, out: Path, isa: str) -> None:
    """onnxruntime's dynamic quantisation of MatMul and fused Attention weights.

    optimum's ORTQuantizer refuses fused graphs (shape inference does not know the com.microsoft
    ops), so the default tensor type is given here instead."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}, **quantization_settings(isa))


def _strip_pooling(src: Path, dst: Path) -> None:
    import onnx

    model = onnx.load(str(src))
    graph = model.graph
    keep = [n for n in graph.node if not any(o == POOLED or o.startswith(PREFIX) for o in n.output)]
    del graph.node[:]
    graph.node.extend(keep)
    inits = [t for t in graph.initializer if not t.name.startswith(PREFIX)]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    outs = [o for o in graph.output if o.name != POOLED]
    del graph.output[:]
    graph.output.extend(outs)
    onnx.save(model, str(dst))


def add_pooling(path: Path, st_folder: Path) -> bool:
    """Add the ``sentence_embedding`` output (pooling, then L2 normalisation when the model has a
    Normalize module) to the graph in ``path``. Returns False, leaving the file unchanged, when the
    graph already has it or the pooling mode is not one the graph can express (mean, cls, max)."""
    import onnx
    from onnx import TensorProto, helper

    from harness.encode.encoder import read_st_folder

    info = read_st_folder(st_folder)
    model = onnx.load(str(path))
    graph = model.graph
    outputs = [o.name for o in graph.output]
    if POOLED in outputs or info["pooling"] not in ("mean", "cls", "max") or "last_hidden_state" not in outputs:
        return False
    if not info["include_prompt"]:
        return False
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        return False  # ReduceSum takes its axes as an input from opset 13 on
    p = PREFIX
    nodes, inits = [], []

    def const(name, value, dtype=TensorProto.INT64):
        inits.append(helper.make_tensor(p + name, dtype, [len(value)], value))
        return p + name

    hidden = "last_hidden_state"
    hidden_type = next(o.type.tensor_type.elem_type for o in graph.output if o.name == hidden)
    if hidden_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [hidden], [p + "hidden"], to=TensorProto.FLOAT))
        hidden = p + "hidden"
    if info["pooling"] == "cls":
        nodes.append(helper.make_node("Gather", [hidden, const("zero", [0])], [p + "cls"], axis=1))
        nodes.append(helper.make_node("Squeeze", [p + "cls", const("axis1", [1])], [p + "pooled"]))
    else:
        nodes += [
            helper.make_node("Cast", ["attention_mask"], [p + "maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", [p + "maskf", const("last", [-1])], [p + "mask3"]),
        ]
        if info["pooling"] == "mean":
            nodes += [
                helper.make_node("Mul", [hidden, p + "mask3"], [p + "masked"]),
                helper.make_node("ReduceSum", [p + "masked", const("axis1", [1])], [p + "sum"], keepdims=0),
                helper.make_node("ReduceSum", [p + "mask3", p + "axis1"], [p + "count"], keepdims=0),
                helper.make_node("Max", [p + "count", const("eps", [1e-9], TensorProto.FLOAT)], [p + "safe"]),
                helper.make_node("Div", [p + "sum", p + "safe"], [p + "pooled"]),
            ]
        else:  # max over real tokens: padding pushed to -1e9 first
            nodes += [
                helper.make_node("Sub", [p + "mask3", const("one", [1.0], TensorProto.FLOAT)], [p + "off"]),
                helper.make_node("Mul", [p + "off", const("big", [1e9], TensorProto.FLOAT)], [p + "penalty"]),
                helper.make_node("Add", [hidden, p + "penalty"], [p + "shifted"]),
                helper.make_node("ReduceMax", [p + "shifted"], [p + "pooled"], axes=[1], keepdims=0)
                if opset < 18 else
                helper.make_node("ReduceMax", [p + "shifted", const("axis1", [1])], [p + "pooled"], keepdims=0),
            ]
    last = p + "pooled"
    if info["normalize"]:
        nodes += [
            helper.make_node("ReduceL2", [last], [p + "norm"], axes=[-1], keepdims=1)
            if opset < 18 else
            helper.make_node("ReduceL2", [last, const("last_axis", [-1])], [p + "norm"], keepdims=1),
            helper.make_node("Max", [p + "norm", const("tiny", [1e-12], TensorProto.FLOAT)], [p + "safenorm"]),
            helper.make_node("Div", [last, p + "safenorm"], [p + "normed"]),
        ]
        last = p + "normed"
    nodes.append(helper.make_node("Identity", [last], [POOLED]))
    seen = set()
    graph.initializer.extend(t for t in inits if not (t.name in seen or seen.add(t.name)))
    graph.node.extend(nodes)
    hidden_out = next(o for o in graph.output if o.name == "last_hidden_state").type.tensor_type.shape.dim
    dims = [hidden_out[0].dim_param or hidden_out[0].dim_value or "batch_size",
            hidden_out[-1].dim_value or hidden_out[-1].dim_param or "hidden_size"]
    graph.output.append(helper.make_tensor_value_info(POOLED, TensorProto.FLOAT, dims))
    tmp = path.with_suffix(".pooled.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return True


def copy_variant(src_dir: Path, file: str, dst_dir: Path) -> None:
    """Copy export folder ``src_dir`` to ``dst_dir`` with ``onnx/<file>`` as its only ``onnx/model.onnx``."""
    shutil.copytree(src_dir, dst_dir, ignore=shutil.ignore_patterns("onnx"))
    (dst_dir / "onnx").mkdir()
    shutil.copy2(src_dir / "onnx" / file, dst_dir / "onnx" / "model.onnx")
