"""Where the units of work of a batch run.

* ``serial``: in this process, one after another (one device).
* ``processes``: one worker process per device (``devices: [cuda:0, cuda:1, ...]``), started with
  torch.multiprocessing's *spawn*; each worker claims a device when it starts and then takes
  identities from the pool as it frees up.
* ``ray``: Ray tasks (``pip install guide-unlearning[ray]``). Each task reserves
  ``ray.num_gpus`` GPUs and ``ray.num_cpus`` CPUs and Ray's scheduler places it on a node with
  them free; inside a task the device is ``cuda`` (Ray sets CUDA_VISIBLE_DEVICES) or ``cpu`` when
  ``num_gpus`` is 0. Workers write into the batch folder, so on a multi-node cluster it must be on
  a file system every node sees. ``ray.address`` picks the cluster; without it Ray connects to
  the one in ``RAY_ADDRESS`` or starts one on this machine.

Callbacks in the calling process (they update status.json): ``on_queued(task)`` when a task is
handed to a worker pool or to Ray, ``on_start(task, device)`` when its work begins, and
``on_result(outcome)`` as results arrive. Serial runs start each task as they reach it; worker
processes tell the parent through a queue when they begin a task (the parent, the only writer
of status.json, marks it); Ray tasks report no start -- they stay queued until their result
returns (Ray's own scheduler decides when they begin).
"""
from __future__ import annotations

import os
import queue as queue_module
from typing import Callable, List, Optional, Sequence

from guide.batch.independent import IdentityOutcome, IdentityTask, erase_identity
from guide.batch.schema import RayOptions
from guide.errors import GuideError

OnResult = Callable[[IdentityOutcome], None]
OnQueued = Callable[[IdentityTask], None]
OnStart = Callable[[IdentityTask, str], None]


# ------------------------------------------------------------------------------ serial


def run_serial(tasks: Sequence[IdentityTask], on_start: OnStart, on_result: OnResult, kit=None,
               progress: bool = True, log: Callable[[str], None] = print) -> None:
    """Each task in this process, one after another."""
    for task in tasks:
        on_start(task, task.device)
        on_result(erase_identity(task, kit, progress=progress, log=log))


# --------------------------------------------------------------------------- processes

_WORKER_DEVICE: Optional[str] = None
_STARTED = None  # in a worker: the queue on which it tells the parent (index, device) of each task it begins
POLL_S = 0.5  # how often the parent looks for started tasks while it waits for results


def _claim_device(queue, started=None) -> None:
    """Pool initializer: this worker process owns one device for its lifetime (and reports the
    tasks it begins on `started`)."""
    import torch

    global _WORKER_DEVICE, _STARTED
    _WORKER_DEVICE, threads = queue.get()
    _STARTED = started
    torch.set_num_threads(threads)  # CPU workers share the cores instead of oversubscribing them
    if _WORKER_DEVICE.startswith("cuda"):
        torch.cuda.set_device(torch.device(_WORKER_DEVICE))


def _erase_on_worker_device(task: IdentityTask) -> IdentityOutcome:
    from dataclasses import replace

    return erase_identity(replace(task, device=_WORKER_DEVICE or task.device))


def _announce_then(work: Callable[[IdentityTask], IdentityOutcome], index: int, task: IdentityTask) -> IdentityOutcome:
    """In a worker: tell the parent that task `index` begins on this worker's device, then run it."""
    if _STARTED is not None:
        _STARTED.put((index, _WORKER_DEVICE or task.device))
    return work(task)


def run_processes(tasks: Sequence[IdentityTask], devices: List[str], on_queued: OnQueued, on_start: OnStart,
                  on_result: OnResult, work: Optional[Callable[[IdentityTask], IdentityOutcome]] = None) -> None:
    """One spawned worker process per device; identities go to whichever worker is free.
    `work` (a module-level function, run in the workers; default: erase_identity on the worker's
    device) is the unit of work; the tests swap it."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor

    import torch.multiprocessing as mp

    if not tasks:
        return
    work = work or _erase_on_worker_device
    ctx = mp.get_context("spawn")
    queue, started = ctx.Queue(), ctx.Queue()
    workers = min(len(devices), len(tasks))
    cpu_workers = sum(d == "cpu" for d in devices[:workers])
    threads = max(1, (os.cpu_count() or 1) // max(1, cpu_workers))
    for device in devices[:workers]:
        queue.put((device, threads))
    finished = set()

    def report_starts() -> None:
        while True:
            try:
                index, device = started.get_nowait()
            except queue_module.Empty:
                return
            if index not in finished:  # its result may have overtaken the message
                on_start(tasks[index], device)

    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_claim_device,
                             initargs=(queue, started)) as pool:
        futures = {}
        for index, task in enumerate(tasks):
            on_queued(task)
            futures[pool.submit(_announce_then, work, index, task)] = index
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, timeout=POLL_S, return_when=FIRST_COMPLETED)
            report_starts()
            for future in done:
                index = futures[future]
                task = tasks[index]
                try:
                    outcome = future.result()
                except BrokenProcessPool as exc:
                    outcome = IdentityOutcome(task.entry.id, False, f"worker process died ({exc})")
                except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                    outcome = IdentityOutcome(task.entry.id, False, f"{type(exc).__name__}: {exc}")
                finished.add(index)
                on_result(outcome)


# --------------------------------------------------------------------------------- ray


def ray_module():
    """`import ray`, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise GuideError("executor ray needs Ray: pip install 'guide-unlearning[ray]' (or pip install "
                         "'ray[default]')") from None
    return ray


class RaySession:
    """Connect to (or start) a Ray cluster; shut down on exit only what this session started."""

    def __init__(self, options: RayOptions):
        self.options = options
        self.started = False

    def __enter__(self):
        ray = ray_module()
        if not ray.is_initialized():
            kwargs = {"address": self.options.address} if self.options.address else {}
            ray.init(**kwargs, include_dashboard=False, log_to_driver=False)
            self.started = True
        return ray

    def __exit__(self, *exc):
        if self.started:
            ray_module().shutdown()
        return False


def ray_device(options: RayOptions) -> str:
    """The device inside a Ray task: its GPU(s) when it reserved any, else the CPU."""
    return "cuda" if options.num_gpus > 0 else "cpu"


def _ray_erase(task: IdentityTask) -> IdentityOutcome:
    return erase_identity(task)


def run_ray(tasks: Sequence[IdentityTask], options: RayOptions, on_queued: OnQueued, on_result: OnResult) -> None:
    """One Ray task per identity; Ray's scheduler decides where and when each runs (so a task is
    queued until its result returns: Ray tells the caller nothing when a task begins)."""
    from dataclasses import replace

    if not tasks:
        return
    with RaySession(options) as ray:
        remote = ray.remote(num_gpus=options.num_gpus, num_cpus=options.num_cpus, max_retries=0)(_ray_erase)
        pending = {}
        for task in tasks:
            on_queued(task)
            pending[remote.remote(replace(task, device=ray_device(options)))] = task
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a crashed task fails only its identity
                    outcome = IdentityOutcome(task.entry.id, False, " ".join(f"Ray task failed: {exc}".split())[:500])
                on_result(outcome)


def run_on_ray(function, options: RayOptions, *args):
    """Run one function (a joint or sequential batch) as a single Ray task and return its result."""
    with RaySession(options) as ray:
        remote = ray.remote(num_gpus=options.num_gpus, num_cpus=options.num_cpus, max_retries=0)(function)
        try:
            return ray.get(remote.remote(*args))
        except Exception as exc:  # noqa: BLE001 - Ray wraps the task's error with its traceback
            cause = getattr(exc, "cause", None)
            if isinstance(cause, GuideError):
                raise cause from None  # a one-line error, as when the batch runs here
            raise
