"""The export variants: the names a suite's ``[export] variants`` may list, what each is, the
devices it runs on and the file it is written to (built by :mod:`harness.export.variants`)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.machine import cpu_isa
from harness.core.names import VariantName


@dataclass(frozen=True)
class Variant:
    name: VariantName
    help: str
    devices: tuple[str, ...]
    exact: bool  #: numerically the fp32 model (held to export.min_cosine); else reduced precision
    engine: str = "onnxruntime"  #: what runs it: onnxruntime, or openvino (``pip install ".[openvino]"``)

    @property
    def folder(self) -> str:
        """The export folder's subfolder holding it."""
        return "openvino" if self.engine == "openvino" else "onnx"

    def file(self) -> str:
        if self.engine == "openvino":
            return "model_int8.xml"
        if self.name == VariantName.FP32:
            return "model.onnx"
        if self.name == VariantName.FP16:
            return "model_O4.onnx"
        if self.name == VariantName.INT8:
            return f"model_qint8_{cpu_isa()}.onnx"
        return f"model_{self.name}.onnx"


_BOTH = ("cpu", "cuda")

#: every variant, by name, in the order the docs list them
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(VariantName.FP32, "the plain ONNX export", _BOTH, True),
        Variant(VariantName.O1, "basic graph optimisations", _BOTH, True),
        Variant(VariantName.O2, "O1 + transformer fusions (Attention, SkipLayerNorm, BiasGelu)", _BOTH, True),
        Variant(VariantName.O3, "O2 + GELU approximation", _BOTH, True),
        Variant(VariantName.FP16, "O3 in float16, for CUDA", ("cuda",), False),
        Variant(
            VariantName.INT8,
            "O2 with dynamic int8 weights, quantised for this CPU's instruction set",
            ("cpu",),
            False,
        ),
        Variant(
            VariantName.OPENVINO_INT8,
            "OpenVINO with NNCF's static int8 (calibrated on training documents), for the CPU",
            ("cpu",),
            False,
            "openvino",
        ),
    )
}
assert set(VARIANTS) == set(VariantName.values()), "every declared variant name has its catalogue entry"

#: export.variants when a suite leaves it unset: on the CPU, onnxruntime's fp32 is slower than torch on
#: some CPUs (AVX-512 Xeons, benchmarks/RESULTS.md) and int8 faster on every CPU measured, so both are
#: built and the faster within max_drop ships; on CUDA fp32, as before
DEVICE_VARIANTS: dict[str, tuple[VariantName, ...]] = {
    "cpu": (VariantName.FP32, VariantName.INT8),
    "cuda": (VariantName.FP32,),
}
