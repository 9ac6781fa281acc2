"""Run a batch job into an output folder: prepare/resume the folder, dispatch by mode and
executor, write the report, summarise.

Folder: DIR/job.json (the validated job and the settings a resume must match), DIR/status.json
(:mod:`guide.batch.status`), DIR/<id>/ per identity, DIR/model/ for the one-model modes
(:mod:`guide.batch.outputs`), DIR/report.json + report.md (:mod:`guide.batch.report`).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from guide.batch.kit import AUTO, make_kit
from guide.batch.outputs import read_json
from guide.batch.resources import Resources, check_device, generator_path_for
from guide.batch.schema import BatchJob
from guide.batch.status import STATUS_FILE, StatusBook
from guide.errors import GuideError
from guide.io.folders import clear_folder

JOB_FILE = "job.json"


class BatchFolderError(GuideError):
    """The output folder cannot take this batch (exists, or does not match on --resume)."""


@dataclass
class BatchSummary:
    out_dir: Path
    counts: dict
    total: int
    report: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every identity was erased, else 1."""
        return 0 if self.counts.get("done", 0) == self.total else 1

    def line(self) -> str:
        c = self.counts
        rest = c.get("pending", 0) + c.get("queued", 0) + c.get("running", 0)
        tail = f", {rest} not finished" if rest else ""
        return (f"batch: {c.get('done', 0)} of {self.total} identities erased, {c.get('failed', 0)} failed{tail} "
                f"(status: {self.out_dir / STATUS_FILE}, report: {self.out_dir / 'report.md'})")


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _identity_record(entry) -> dict:
    return _jsonable({"kind": entry.kind, "value": entry.value, "name": entry.name})


def prepare_batch_dir(job: BatchJob, out_dir: Path, resume: bool, overwrite: bool) -> StatusBook:
    """Create the folder (or check it matches the job on resume) and return its status book."""
    out_dir = Path(out_dir)
    if resume and (out_dir / STATUS_FILE).is_file():
        saved = (read_json(out_dir / JOB_FILE, {}) or {}).get("settings", {})
        current = _jsonable(job.settings())
        differ = [k for k in current if saved.get(k) != current[k]]
        if differ:
            raise BatchFolderError(f"--resume: the job's {', '.join(differ)} differ from the interrupted batch in "
                                   f"{out_dir}; use the same settings or a new --out folder")
        book = StatusBook.load(out_dir)
        listed = {e.id: e for e in job.identities}
        for ident, entry in book.entries.items():
            if ident not in listed:
                raise BatchFolderError(f"--resume: identity {ident!r} of the interrupted batch is not in the job file")
            if entry.get("identity") != _identity_record(listed[ident]):
                raise BatchFolderError(f"--resume: identity {ident!r} is not the same as in the interrupted batch "
                                       f"({entry.get('identity')} there)")
        book.add(job.identities)
    else:
        if out_dir.exists() and any(out_dir.iterdir()):
            if resume:
                raise BatchFolderError(f"--resume: {out_dir} holds no {STATUS_FILE}; it is not a batch folder")
            if not overwrite:
                raise BatchFolderError(f"output folder {out_dir} is not empty (use --overwrite, or --resume to continue)")
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        book = StatusBook.create(out_dir, job.mode, job.identities)
    from guide.erase import write_json

    write_json(out_dir / JOB_FILE, _jsonable({"settings": job.settings(), "job": job.to_dict()}))
    return book


def _remove_new_folder(out_dir: Path, existed: bool) -> None:
    """Undo prepare_batch_dir of a new batch: remove the folder (empty it when it existed, empty)."""
    if not existed:
        shutil.rmtree(out_dir, ignore_errors=True)
    else:
        clear_folder(out_dir)


# --------------------------------------------------------------------------- modes


def _run_independent(job: BatchJob, out_dir: Path, book: StatusBook, executor: str, resume: bool, resources,
                     evaluator, progress: bool, log: Callable[[str], None]) -> None:
    from guide.batch import executors
    from guide.batch.independent import IdentityTask, discard_failed_attempt
    from guide.erase import has_saved_state

    todo = [e for e in job.identities if book.state(e.id) != "done"]
    # resumed: continue from a checkpoint where there is one (interrupted, or failed after training
    # began); start failed ones without one over
    tasks = []
    for e in todo:
        folder = out_dir / e.id
        again = resume and book.state(e.id) == "failed" and not has_saved_state(folder)
        tasks.append(IdentityTask(job, e, str(folder), job.devices[0], resume=resume and not again, overwrite=again))
    finished = [len(job.identities) - len(todo)]

    def on_queued(task):
        book.mark(task.entry.id, "queued")

    def on_start(task, device):
        book.mark(task.entry.id, "running", device=device)

    def on_result(outcome):
        finished[0] += 1
        state = "done" if outcome.ok else "failed"
        if not outcome.ok:
            discard_failed_attempt(out_dir / outcome.id)
        book.mark(outcome.id, state, reason=outcome.reason, seconds=round(outcome.seconds, 2),
                  device=outcome.device or None)
        detail = f"done in {outcome.seconds:.1f} s" if outcome.ok else f"FAILED: {outcome.reason}"
        log(f"[{finished[0]}/{len(job.identities)}] {outcome.id}: {detail}")

    if executor == "ray":
        executors.run_ray(tasks, job.ray, on_queued, on_result)
    elif executor == "processes":
        log(f"independent: {len(tasks)} identities on {len(job.devices)} worker processes ({', '.join(job.devices)})")
        executors.run_processes(tasks, job.devices, on_queued, on_start, on_result)
    else:
        kit = make_kit(job, job.devices[0], resources, evaluator) if tasks else None
        executors.run_serial(tasks, on_start, on_result, kit, progress=progress, log=log)


def run_model_mode(job: BatchJob, out_dir: str, device: str, resources: Optional[Resources] = None,
                   evaluator=AUTO, progress: bool = False, log: Callable[[str], None] = lambda m: None) -> dict:
    """Joint or sequential batch on one device (also the body of its Ray task); returns the counts."""
    from guide.batch.joint import run_joint
    from guide.batch.sequential import run_sequential

    book = StatusBook.load(Path(out_dir))
    if not book.ids("pending", "queued", "running", "failed"):
        return book.counts()
    kit = make_kit(job, device, resources, evaluator)
    run = run_joint if job.mode == "joint" else run_sequential
    run(kit, Path(out_dir), book, progress=progress, log=log)
    return book.counts()


def run_batch(job: BatchJob, out_dir, *, resume: bool = False, overwrite: bool = False,
              resources: Optional[Resources] = None, evaluator=AUTO, progress: bool = True,
              log: Callable[[str], None] = print) -> BatchSummary:
    """Run (or resume) `job` into out_dir. `resources`/`evaluator` may be injected for in-process
    runs (executor serial); worker processes and Ray tasks build their own from the job."""
    out_dir = Path(out_dir)
    executor = job.resolved_executor()
    if executor == "ray":
        from guide.batch.executors import ray_module

        ray_module()
    else:
        for device in job.devices:
            check_device(device)
        if resources is None:
            generator_path_for(job)  # a missing generator is a job error: fail before the folder exists
    fresh = not (resume and (out_dir / STATUS_FILE).is_file())
    existed = out_dir.exists()
    book = prepare_batch_dir(job, out_dir, resume, overwrite)
    try:
        if job.mode == "independent":
            _run_independent(job, out_dir, book, executor, resume, resources, evaluator, progress, log)
        elif executor == "ray":
            from guide.batch.executors import ray_device, run_on_ray

            log(f"{job.mode}: one Ray task ({job.ray.num_gpus:g} GPU, {job.ray.num_cpus:g} CPU)")
            run_on_ray(run_model_mode, job.ray, job, str(out_dir), ray_device(job.ray))
            book = StatusBook.load(out_dir)
        else:
            run_model_mode(job, str(out_dir), job.devices[0], resources, evaluator, progress, log)
            book = StatusBook.load(out_dir)
    except GuideError:
        # a setup error (missing network checkpoint, unreadable generator, ...) before any identity
        # started: leave no half-made batch folder behind in a folder this run created
        if fresh and not StatusBook.load(out_dir).ids("running", "done", "failed"):
            _remove_new_folder(out_dir, existed)
        raise
    if job.evaluation.audit is not None:  # after every identity (sequential: after the last stage)
        from guide.audit.batch import audit_batch

        audit_batch(job, out_dir, book, resources, progress=progress, log=log)
    from guide.batch.report import write_report

    report = write_report(job, out_dir, book)
    return BatchSummary(out_dir, book.counts(), len(book.order), report)
