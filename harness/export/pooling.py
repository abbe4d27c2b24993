"""In-graph pooling: the ``sentence_embedding`` output added to an exported graph (pooling, then
L2 normalisation where the model has a Normalize module), so an encoder fetches one vector per text
instead of the whole ``last_hidden_state``; and its removal, for tools that rewrite the graph."""

from __future__ import annotations

from pathlib import Path

from harness.core.st_folder import POOLED, read_st_folder

PREFIX = "harness_pool/"  #: names of the pooling nodes and constants


def strip_pooling(src: Path, dst: Path) -> None:
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

    info = read_st_folder(st_folder)
    model = onnx.load(str(path))
    graph = model.graph
    outputs = [o.name for o in graph.output]
    if (
        POOLED in outputs
        or info["pooling"] not in ("mean", "cls", "max")
        or "last_hidden_state" not in outputs
    ):
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
                if opset < 18
                else helper.make_node(
                    "ReduceMax", [p + "shifted", const("axis1", [1])], [p + "pooled"], keepdims=0
                ),
            ]
    last = p + "pooled"
    if info["normalize"]:
        nodes += [
            helper.make_node("ReduceL2", [last], [p + "norm"], axes=[-1], keepdims=1)
            if opset < 18
            else helper.make_node("ReduceL2", [last, const("last_axis", [-1])], [p + "norm"], keepdims=1),
            helper.make_node(
                "Max", [p + "norm", const("tiny", [1e-12], TensorProto.FLOAT)], [p + "safenorm"]
            ),
            helper.make_node("Div", [last, p + "safenorm"], [p + "normed"]),
        ]
        last = p + "normed"
    nodes.append(helper.make_node("Identity", [last], [POOLED]))
    seen = set()
    graph.initializer.extend(t for t in inits if not (t.name in seen or seen.add(t.name)))
    graph.node.extend(nodes)
    hidden_out = next(o for o in graph.output if o.name == "last_hidden_state").type.tensor_type.shape.dim
    dims = [
        hidden_out[0].dim_param or hidden_out[0].dim_value or "batch_size",
        hidden_out[-1].dim_value or hidden_out[-1].dim_param or "hidden_size",
    ]
    graph.output.append(helper.make_tensor_value_info(POOLED, TensorProto.FLOAT, dims))
    tmp = path.with_suffix(".pooled.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return True
