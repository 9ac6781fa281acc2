"""Mode ``independent``: one unlearned model per identity, each in DIR/<id>/ through run_erase.

:func:`erase_identity` is the unit of work every executor runs (in-process, in a worker process
per device, or as a Ray task); it never raises for a bad identity -- it returns an
:class:`IdentityOutcome` with the reason. :func:`discard_failed_attempt` then clears what the
failed attempt left in DIR/<id>/ (all of it, or all but what --resume continues from).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

from guide.batch.latents import failure_reason
from guide.batch.schema import BatchJob, JobIdentity
from guide.io.folders import remove_if_empty, remove_outputs


@dataclass
class IdentityTask:
    """Erase one identity of `job` into out_dir on device (resume: continue an earlier attempt;
    overwrite: start over in a folder that holds a failed attempt)."""

    job: BatchJob
    entry: JobIdentity
    out_dir: str
    device: str = "cpu"
    resume: bool = False
    overwrite: bool = False


@dataclass
class IdentityOutcome:
    id: str
    ok: bool
    reason: Optional[str] = None
    seconds: float = 0.0
    device: str = ""
    metrics: dict = field(default_factory=dict)


def erase_identity(task: IdentityTask, kit=None, *, progress: bool = False,
                   log: Callable[[str], None] = lambda m: None) -> IdentityOutcome:
    """run_erase for one identity, then its evaluation (merged into its metrics.json)."""
    from guide.batch.kit import cached_kit, identity_metrics, model_metrics
    from guide.batch.outputs import load_latents
    from guide.erase import run_erase, write_json
    from guide.io import load_generator

    start = time.perf_counter()
    job, entry = task.job, task.entry
    try:
        kit = kit if kit is not None else cached_kit(job, task.device)
        res = kit.resources
        result = run_erase(entry.to_identity(), task.out_dir, res.G_src, job.erase, res.networks,
                           checkpoint_dir=res.checkpoint_dir, generator_path=res.generator_path,
                           device=kit.device, overwrite=task.overwrite, resume=task.resume,
                           checkpoint_every=job.checkpoint_every, export_pkl=job.export_pkl, progress=progress,
                           log=log, views=job.evaluation.views, metrics_note=False,
                           photo_models=kit.photo_models)  # photos: encoder/detector loaded once per kit
        G = load_generator(result.out_dir, device=kit.device)
        w_u = load_latents(Path(task.out_dir) / "latents.pt", kit.device)["w_u"]
        pairs = kit.retain.pairs(G) if kit.retain.ids else []
        extra = {**model_metrics(kit, G, pairs), **identity_metrics(kit, G, w_u, pairs)}
        metrics = {**result.metrics, **extra, "evaluation": kit.eval_note}
        write_json(Path(task.out_dir) / "metrics.json", json.loads(json.dumps(metrics, default=str)))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - one bad identity must not stop the batch
        return IdentityOutcome(entry.id, False, failure_reason(exc), time.perf_counter() - start, task.device)
    return IdentityOutcome(entry.id, True, None, time.perf_counter() - start, str(kit.device), metrics)


# what run_erase(resume=True) continues from: its settings, latents, loss history and training state
RESUMABLE = ("config.json", "latents.pt", "losses.jsonl", "checkpoint/state.pt")


def discard_failed_attempt(out_dir: Union[str, Path]) -> None:
    """Leave nothing half-made by a failed identity: remove what the attempt wrote (the folder
    too when that empties it), or, when training had saved a checkpoint, all of it but what a
    resume continues from (:data:`RESUMABLE`). Files the toolkit did not write stay."""
    from guide.erase import ERASE_OUTPUTS, has_saved_state

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return
    keep = RESUMABLE if has_saved_state(out_dir) else ()
    remove_outputs(out_dir, [p for p in ERASE_OUTPUTS if p not in keep])
    remove_if_empty(out_dir)
