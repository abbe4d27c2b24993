"""Where baselines and candidates run. Every executor has the same calls, so the session's one loop
(:meth:`harness.run.session.Session.run`) drives them all: ``submit`` each item that must compute,
then ``results()`` yields ``(key, result, error)`` as items finish, ``cancel()`` drops what has not
started (``-x``, Ctrl-C), ``close()`` at the end. The driver judges, gates and reports every result
in suite order, so every executor gives the same results.json and exit code.

* ``local``: one item after another in this process, each computed only when ``results()`` is
  asked for the next one, so the session has judged (and ``-x`` has seen) every earlier item before
  the next one starts, and a loss can mine with a candidate trained earlier in the run.
* ``ray``: every item a task of a Ray cluster. A task gets a :class:`Job` (the suite, which item,
  the run folder, the step keys and the run options) and the prepared data (through the object
  store, put once per suite); :func:`run_job` loads the plugins the same way the command does,
  resolves the base model and runs the item's pipeline, with no session. Artifacts: if the run
  folder is visible to the worker (a local Ray instance, or a shared file system mounted at the same
  path on every node), the worker writes into it; otherwise it works in a temporary folder and sends
  the item's folder back through the object store as a tar archive, which the executor unpacks into
  the run folder.
"""

from __future__ import annotations

import io
import os
import secrets
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Tuple

from harness.core.suiterun import SuiteRun
from harness.errors import ConfigError
from harness.plugins import Plugins
from harness.results import CandidateResult
from harness.run.options import RunOptions
from harness.run.pipeline import Pipeline
from harness.suite.collect import Item

SHARED_MARK = ".harness-shared"
Outcome = Tuple[Any, Optional[CandidateResult], Optional[str]]  #: (key, result, error)


class LocalExecutor:
    """Items one after another in this process, each started when ``results()`` is asked for it;
    ``started(key)`` (if given) is called just before an item computes, so that its progress shows
    under its name."""

    kind = "local"
    #: items see the results of earlier ones (a loss may mine with a candidate trained before it)
    sequential = True

    def __init__(self, plugins: Plugins, options: RunOptions):
        self.pipeline = Pipeline(plugins, options)
        self.queue: list[tuple[Any, SuiteRun, Item, dict]] = []

    def describe(self) -> dict:
        return {"kind": "local"}

    def submit(self, run: SuiteRun, item: Item, keys: dict[str, str], key: Any) -> None:
        self.queue.append((key, run, item, keys))

    def results(self, started: Callable[[Any], None] | None = None) -> Iterator[Outcome]:
        while self.queue:
            key, run, item, keys = self.queue.pop(0)
            if started is not None:
                started(key)
            yield key, self.pipeline.compute(run, item, keys), None

    def cancel(self) -> None:
        self.queue.clear()

    def close(self) -> None:
        pass


@dataclass
class Job:
    """What crosses to a worker: everything picklable, nothing that holds a process's state."""

    suite: Any  #: harness.suite.schema.Suite
    model: str  #: ``[[models]].name``
    loss: str | None  #: ``[[losses]].name``, ``None`` for the baseline
    run_dir: str
    keys: dict[str, str]
    options: RunOptions  #: the run's: ``device``, ``no_cache``, ``plugins`` (``-p``, relative to ``cwd``)
    cwd: str
    shared_token: str  #: the run folder holds ``.harness-shared`` with this text when the worker can see it
    reference: str | None = (
        None  #: ``[[references]].name`` of a model reference (``model`` is then its name too)
    )


def run_job(job: Job, data: tuple) -> tuple[CandidateResult, bytes | None]:
    """Run one baseline or candidate in this (worker) process: its unjudged result, with where it ran,
    and the tar archive of its folder when the worker cannot see the run folder (else None)."""
    import shutil
    import socket

    from harness.plugins import from_command_line

    suite = job.suite
    plugins = from_command_line(job.options.plugins, Path(job.cwd), quiet=True)  # the driver prints
    plugins.load_suite_plugins(suite)
    if job.reference is not None:
        item = Item.for_reference(suite, next(r for r in suite.references if r.name == job.reference))
    else:
        model = next(m for m in suite.models if m.name == job.model)
        loss = None if job.loss is None else next(x for x in suite.losses if x.name == job.loss)
        item = Item(suite, model, loss)
    model = item.model
    run_dir, shipped_back = Path(job.run_dir), None
    mark = run_dir / SHARED_MARK
    if not (mark.is_file() and mark.read_text() == job.shared_token):  # not a shared file system
        shipped_back = Path(tempfile.mkdtemp(prefix="harness-ray-"))
        run_dir = shipped_back / "run"
    data, out_of_domain = data  # the prepared data of the suite and of its out-of-domain suites
    run = SuiteRun(suite, [item], run_dir, data=data, out_of_domain=out_of_domain)
    run.models[model.name] = plugins.resolve_model(model.base, model.revision)
    try:
        result = Pipeline(plugins, replace(job.options, quiet=True)).compute(run, item, job.keys)
        result["worker"] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "artifacts": "shared path" if shipped_back is None else "object store",
        }
        return result, None if shipped_back is None else _tar(run_dir / "models" / item.name)
    finally:
        if shipped_back is not None:
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
    cluster this machine is part of; ``ray://host:10001`` goes through Ray Client. ``options``: the
    run's, given to every task (:meth:`bind` sets them once the run's device is known)."""

    kind = "ray"
    sequential = False

    def __init__(self, address: str | None, num_cpus: int | None = None, options: RunOptions | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError(
                '--executor ray: Ray is not installed; pip install "embedding-harness[ray]" '
                '(or pip install -e ".[ray]")'
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            kw: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": "ERROR",
            }
            if num_cpus and address is None:
                kw["num_cpus"] = num_cpus
            try:
                ray.init(address=address, **kw)
            except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError
                raise ConfigError(
                    f"--ray-address {address or '(local)'}: cannot connect to Ray: {e}"
                ) from None
            self._started = True
        else:
            self._started = False
        self._remote = ray.remote(max_retries=0)(run_job)
        self.cluster = self.cluster_text()  #: the cluster as it was when the run started
        self.token = secrets.token_hex(8)
        self.options = options or RunOptions()
        self.pending: dict[Any, tuple[Any, Path, str]] = {}  #: task -> (key, run folder, item name)
        self._data: dict[int, Any] = {}  #: id(run) -> the object-store reference of its prepared data

    def bind(self, options: RunOptions) -> None:
        self.options = options

    def gpus(self) -> int:
        return int(self.ray.cluster_resources().get("GPU", 0))

    def cluster_text(self) -> str:
        res = self.ray.cluster_resources()
        return (
            f"Ray {self.ray.__version__}: {len(self.ray.nodes())} node(s), {res.get('CPU', 0):g} CPU(s), "
            f"{res.get('GPU', 0):g} GPU(s)"
        )

    def describe(self) -> dict:
        return {"kind": "ray", "cluster": self.cluster}

    def submit(self, run: SuiteRun, item: Item, keys: dict[str, str], key: Any) -> None:
        """One task per baseline or candidate: one GPU each on CUDA (``training.processes`` GPUs for a
        data-parallel candidate), else one CPU."""
        if id(run) not in self._data:
            self._share(run.run_dir)
            self._data[id(run)] = self.ray.put((run.data, run.out_of_domain))
        job = Job(
            run.suite,
            item.model.name,
            None if item.loss is None else item.loss.name,
            str(run.run_dir),
            keys,
            self.options,
            str(Path.cwd()),
            self.token,
            None if item.reference is None else item.reference.name,
        )
        processes = run.suite.training.processes if item.loss is not None else 1
        resources = (
            {"num_gpus": processes, "num_cpus": 1}
            if self.options.device == "cuda"
            else {"num_cpus": processes}
        )
        ref = self._remote.options(**resources).remote(job, self._data[id(run)])
        self.pending[ref] = (key, run.run_dir, item.name)

    def _share(self, run_dir: Path) -> None:
        """Leave the token a worker looks for to know it sees the run folder. With
        ``HARNESS_RAY_ARTIFACTS=object-store`` it is not left, so artifacts always travel back
        through the object store (for a path that exists on every node but is not shared)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        if os.environ.get("HARNESS_RAY_ARTIFACTS") != "object-store":
            (run_dir / SHARED_MARK).write_text(self.token)

    def results(self, started: Callable[[Any], None] | None = None) -> Iterator[Outcome]:
        """``(key, result, error)`` for each task as it finishes; a task that raised or whose worker
        died gives ``error`` (the cause, in one line) instead of a result. A worker that could not see
        the run folder sent the item's folder back: it is unpacked there. (``started`` is not called:
        tasks start on the cluster, all at once.)"""
        from ray.exceptions import RayError, RayTaskError

        while self.pending:
            ready, _ = self.ray.wait(list(self.pending), num_returns=1)
            key, run_dir, name = self.pending.pop(ready[0])
            try:
                result, archive = self.ray.get(ready[0])
            except RayTaskError as e:
                cause = e.cause if getattr(e, "cause", None) is not None else e
                last = str(cause).strip().splitlines()[-1] if str(cause).strip() else ""
                yield key, None, f"{type(cause).__name__}: {last}"
                continue
            except RayError as e:  # the worker died (killed, out of memory, node lost)
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                yield key, None, f"the Ray worker running it died ({type(e).__name__}: {first})"
                continue
            if archive is not None:
                unpack(archive, run_dir / "models" / name)
            yield key, result, None

    def cancel(self) -> None:
        for ref in list(self.pending):
            self.ray.cancel(ref, force=True)
        self.pending.clear()

    def close(self) -> None:
        """Shut down the Ray instance this executor started (a cluster it joined stays up)."""
        if self._started:
            self._started = False
            self.ray.shutdown()


def make(
    kind: str, plugins: Plugins, options: RunOptions, address: str | None = None, num_cpus: int | None = None
) -> LocalExecutor | RayExecutor:
    """The executor ``--executor`` names, for a run with ``options``."""
    if kind == "local":
        return LocalExecutor(plugins, options)
    return RayExecutor(address, num_cpus, options)
