"""Memory as the kernel counts it: sizes as a suite writes them, this process's resident and peak
memory (or the GPU's, for torch on CUDA), and the share of the machine a training may take by default.

A block's peak is sampled by a thread every few milliseconds and, on Linux, is exact whenever the block
sets a new high-water mark for the process (the kernel's ``VmHWM``, which is read, never reset: resetting
it would also reset what ``/usr/bin/time`` and other outside measurements report).
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path

UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
DEFAULT_SHARE = 0.85  #: of the memory free when the run starts (CPU) or of the GPU's memory


def parse_size(text: str) -> int:
    """``"8GiB"``, ``"512 MiB"``, ``"8GB"``, ``"1.5GiB"`` in bytes; else a ValueError saying what is
    expected."""
    m = SIZE_RE.match(str(text))
    unit = m and m.group(2).lower()
    if not m or unit not in UNITS:
        raise ValueError(f'expected a size such as "8GiB", "512MiB" or "16GB", got {text!r}')
    n = int(float(m.group(1)) * UNITS[unit])
    if n <= 0:
        raise ValueError(f"expected a size above 0, got {text!r}")
    return n


def size_problem(v) -> str | None:
    """The suite check of a size key."""
    try:
        parse_size(v)
    except ValueError as e:
        return str(e)
    return None


def format_size(n: float) -> str:
    """Bytes as ``/usr/bin/time`` users read them: ``7.9 GiB``, ``612 MiB``."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}" if unit == "GiB" else f"{n / scale:.0f} {unit}"
    return f"{n:.0f} B"


def _proc_kb(file: str, field: str) -> int | None:
    """Field ``field`` (in kB) of a ``/proc`` file such as ``/proc/self/status``, in bytes."""
    try:
        for line in Path(file).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _status(field: str) -> int | None:
    return _proc_kb("/proc/self/status", field)


@functools.cache
def _page_size() -> int:
    import os

    return os.sysconf("SC_PAGE_SIZE")


def resident() -> int:
    """This process's resident memory now, in bytes (``/proc/self/statm``: one short line, read
    hundreds of times a second by :class:`PeakMeter`)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _page_size()
    except OSError:
        pass
    import resource  # not Linux: the peak is the best that is known

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if _darwin() else 1024)


def _darwin() -> bool:
    import sys

    return sys.platform == "darwin"


@functools.cache
def _libc():
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return None


def trim() -> None:
    """Hand memory that torch freed back to the kernel: glibc keeps freed blocks below its (growing)
    mmap threshold, so without this what a training step freed stays resident and the next stage's
    allocations come on top of it."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def release_freed() -> None:
    """Collect Python's garbage and :func:`trim`, so the next measurement starts from what is held."""
    import gc

    gc.collect()
    trim()


class PeakMeter:
    """``with PeakMeter(device) as m: ...`` then ``m.peak``: the most memory held during the block,
    in bytes: this process's resident memory (CPU), or what torch reserved on the GPU (CUDA).
    ``interval``: seconds between samples (a probe's step is short; a training's are long)."""

    def __init__(self, device: str = "cpu", interval: float = 0.002):
        self.cuda = device.startswith("cuda")
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mark: int | None = None  #: the process's high-water mark when the block began

    def __enter__(self) -> PeakMeter:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self._mark = _status("VmHWM")
            self.peak = resident()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, resident())

    def read(self) -> int:
        """The peak so far (the block may still be running)."""
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_reserved())
        mark = _status("VmHWM") if self._mark is not None else None
        exact = mark if mark is not None and mark > self._mark else 0  # a new record: the kernel's is exact
        return max(self.peak, resident(), exact)

    def __exit__(self, *exc) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        self.peak = self.read()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def held(device: str = "cpu") -> int:
    """What is held now: resident memory, or what torch reserved on the GPU."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.memory_reserved())
    return resident()


def _cgroup_limit() -> int | None:
    for file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def _available() -> int | None:
    return _proc_kb("/proc/meminfo", "MemAvailable")


def device_total(device: str = "cpu") -> int:
    """All the memory of the device: the GPU's, or this machine's RAM."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    import os

    return _page_size() * os.sysconf("SC_PHYS_PAGES")


def default_limit(device: str = "cpu") -> tuple[int, str]:
    """The default ``training.max_memory``, and how it was found: 85% of what this process holds plus
    the memory the kernel says is available (or the container's limit, if lower); on CUDA 85% of the
    GPU's memory."""
    if device.startswith("cuda"):
        total = device_total(device)
        return int(total * DEFAULT_SHARE), f"{DEFAULT_SHARE:.0%} of the GPU's {format_size(total)}"
    available = _available()
    if available is None:
        available = device_total(device)
    total = resident() + available
    cgroup = _cgroup_limit()
    if cgroup is not None and cgroup < total:
        return int(cgroup * DEFAULT_SHARE), f"{DEFAULT_SHARE:.0%} of the container's {format_size(cgroup)}"
    return int(total * DEFAULT_SHARE), (
        f"{DEFAULT_SHARE:.0%} of the {format_size(total)} free when training began (with what the run holds)"
    )
