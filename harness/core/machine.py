"""This machine's CPU: what every speed figure is measured beside (``results.json``
``environment.cpu``) and the instruction set that decides the int8 variant's settings."""

from __future__ import annotations

import platform
from pathlib import Path

#: the CPU flags that decide which engine and variant is fastest
SPEED_FLAGS = (
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimddp",
    "sve",
)


def _cpuinfo() -> dict[str, str]:
    """The first processor's lines of /proc/cpuinfo (key -> value); {} where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        k, _, v = line.partition(":")
        out.setdefault(k.strip(), v.strip())
    return out


def cpu_description() -> dict:
    """The CPU every speed figure was measured on: vendor, model, cores, and the flags that matter
    (results.json ``environment.cpu``), so that two runs on two machines are not compared by mistake."""
    import os

    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return {
        "vendor": info.get("vendor_id") or info.get("CPU implementer") or platform.processor() or "unknown",
        "model": info.get("model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count() or 0,
        "isa": cpu_isa(),
        "flags": [f for f in SPEED_FLAGS if f in flags],
    }


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
