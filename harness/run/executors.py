"""Where baselines and candidates run: one after another here (``local``), or as tasks of a Ray
cluster (``ray``). Either way the driver loads the data, then judges, gates and reports every
result in suite order, so the two give the same results.json and exit code.

A Ray task gets the suite (a plain dataclass), which baseline or candidate it is, the prepared data
(through the object store, put once per suite), the run folder and the plugin names; it loads the
plugins the same way the command does, resolves its base model, trains, exports and evaluates, and
returns the unjudged result. Artifacts: if the run folder is visible to the worker (a local Ray
instance, or a shared file system mounted at the same path on every node), the worker writes into
it; otherwise it works in a temporary folder and sends the candidate's folder back through the
object store as a tar archive, which the driver unpacks into the run folder.
"""

from __future__ import annotations

import io
import os
import secrets
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from harness.errors import ConfigError

SHARED_MARK = ".harness-shared"


@dataclass
class Task:
    """What crosses to a worker: everything picklable, nothing that holds a process's state."""

    suite: Any  #: harness.suite.config.Suite
    model: str  #: ``[[models]].name``
    loss: str | None  #: ``[[losses]].name``, ``None`` for the baseline
    run_dir: str
    keys: dict[str, str]
    device: str
    plugin_specs: tuple[str, ...]  #: ``-p`` of the command line (``no:NAME`` included), relative to ``cwd``
    cwd: str
    shared_token: str  #: the run folder holds ``.harness-shared`` with this text when the worker can see it


def run_task(task: Task, data) -> dict:
    """Run one baseline or candidate in this (worker) process; the unjudged result, plus where it ran."""
    import socket

    from harness.plugins import from_command_line
    from harness.run.session import Item, Session, SuiteRun

    suite = task.suite
    plugins = from_command_line(task.plugin_specs, Path(task.cwd), quiet=True)  # the driver prints
    plugins.load_suite_plugins(suite)
    model = next(m for m in suite.models if m.name == task.model)
    loss = None if task.loss is None else next(x for x in suite.losses if x.name == task.loss)
    item = Item(suite, model, loss)
    run_dir, shipped_back = Path(task.run_dir), None
    mark = run_dir / SHARED_MARK
    if not (mark.is_file() and mark.read_text() == task.shared_token):  # not a shared file system
        shipped_back = Path(tempfile.mkdtemp(prefix="harness-ray-"))
        run_dir = shipped_back / "run"
    run = SuiteRun(suite, [item], run_dir, data=data)
    session = Session(plugins, [suite], [item], task.device, run_dir.parent)
    run.models[model.name] = plugins.resolve_model(model.base, model.revision)
    try:
        result = session.compute(run, item, task.keys)
        result["worker"] = {"host": socket.gethostname(), "pid": os.getpid(),
                            "artifacts": "shared path" if shipped_back is None else "object store"}
        if shipped_back is not None:
            result["_archive"] = _tar(run_dir / "models" / item.name)
        return result
    finally:
        if shipped_back is not None:
            import shutil

            shutil.rmtree(shipped_back, ignore_errors=True)


def _tar(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if folder.exists():
            tar.add(folder, arcname=".")
    return buf.getvalue()


def unpack(archive: bytes, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        try:
            tar.extractall(folder, filter="data")  # no absolute paths, links out or devices
        except TypeError:  # Python before 3.10.12 / 3.11.4: no filters; the archive is our own worker's
            tar.extractall(folder)  # noqa: S202


class RayExecutor:
    """Submits tasks to a Ray cluster and yields their results as they finish.

    ``address``: ``None`` starts (or joins, with ``RAY_ADDRESS``) a local instance; ``auto`` joins the
    cluster this machine is part of; ``ray://host:10001`` goes through Ray Client."""

    def __init__(self, address: str | None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray: Ray is not installed; pip install \"embedding-harness[ray]\" "
                              "(or pip install -e \".[ray]\")") from None
        self.ray = ray
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if num_cpus and address is None:
                kw["num_cpus"] = num_cpus
            try:
                ray.init(address=address, **kw)
            except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError
                raise ConfigError(f"--ray-address {address or '(local)'}: cannot connect to Ray: {e}") from None
            self._started = True
        else:
            self._started = False
        self._remote = ray.remote(max_retries=0)(run_task)
        self.cluster = self.describe()  #: the cluster as it was when the run started
        self.token = secrets.token_hex(8)
        self.pending: dict[Any, Any] = {}

    def gpus(self) -> int:
        return int(self.ray.cluster_resources().get("GPU", 0))

    def describe(self) -> str:
        res = self.ray.cluster_resources()
        return (f"Ray {self.ray.__version__}: {len(self.ray.nodes())} node(s), {res.get('CPU', 0):g} CPU(s), "
                f"{res.get('GPU', 0):g} GPU(s)")

    def mark_shared(self, run_dir: Path) -> None:
        """Leave the token a worker looks for to know it sees the run folder. With
        ``HARNESS_RAY_ARTIFACTS=object-store`` it is not left, so artifacts always travel back
        through the object store (for a path that exists on every node but is not shared)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        if os.environ.get("HARNESS_RAY_ARTIFACTS") != "object-store":
            (run_dir / SHARED_MARK).write_text(self.token)

    def submit(self, task: Task, data_ref, key: Any) -> None:
        """One task per baseline or candidate: one GPU each on CUDA (``training.processes`` GPUs for a
        data-parallel candidate), else one CPU."""
        processes = task.suite.training.processes if task.loss is not None else 1
        resources = {"num_gpus": processes, "num_cpus": 1} if task.device == "cuda" else {"num_cpus": processes}
        ref = self._remote.options(**resources).remote(task, data_ref)
        self.pending[ref] = key

    def put(self, obj):
        return self.ray.put(obj)

    def results(self) -> Iterator[tuple[Any, dict | None, str | None]]:
        """``(key, result, error)`` for each task as it finishes; a task that raised or whose worker
        died gives ``error`` (the cause, in one line) instead of a result."""
        from ray.exceptions import RayError, RayTaskError

        while self.pending:
            ready, _ = self.ray.wait(list(self.pending), num_returns=1)
            key = self.pending.pop(ready[0])
            try:
                yield key, self.ray.get(ready[0]), None
            except RayTaskError as e:
                cause = e.cause if getattr(e, "cause", None) is not None else e
                yield key, None, f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
            except RayError as e:  # the worker died (killed, out of memory, node lost)
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                yield key, None, f"the Ray worker running it died ({type(e).__name__}: {first})"

    def cancel(self) -> None:
        for ref in list(self.pending):
            self.ray.cancel(ref, force=True)
        self.pending.clear()

    def close(self) -> None:
        """Shut down the Ray instance this executor started (a cluster it joined stays up)."""
        if self._started:
            self._started = False
            self.ray.shutdown()


def make(kind: str, address: str | None, num_cpus: int | None = None) -> RayExecutor | None:
    """``None`` for the local executor (the runner's own loop)."""
    if kind == "local":
        return None
    return RayExecutor(address, num_cpus)

