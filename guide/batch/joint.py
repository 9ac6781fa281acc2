"""Mode ``joint``: all identities erased into ONE model in one LTU run.

The trainer gets the K identities' latents [K,14,512] and their UFO targets: each step sums the
local and adjacency terms of every identity (rendered ``identity_chunk`` identities per forward
pass, gradients accumulated, so memory does not grow with K) plus the global preservation term,
as for one identity. With ``sample_identities: m`` each step uses a random m of the K
identities instead (see :mod:`guide.batch.sampling`: a stochastic estimate of the objective).

Identities whose latent cannot be obtained are marked failed and left out; the rest share the
model. Resume: the training state is in DIR/model/checkpoint/state.pt; a finished model
(its provenance says complete) is not trained again, only the missing renders are written.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from guide.batch.kit import Kit, model_metrics
from guide.batch.latents import failure_reason, resolve_latents
from guide.batch.outputs import (MODEL_DIR, identity_settings, load_latents, merge_json, model_marks, read_json,
                                 save_losses, save_model, write_identity_outputs)
from guide.batch.sampling import make_trainer
from guide.batch.status import StatusBook
from guide.errors import GuideError


def _latents(kit: Kit, book: StatusBook, model_dir: Path):
    """(entries, w_u, w_t) of the model: saved ones when resuming, else resolved now."""
    from guide.erase import write_json, write_tensors
    from guide.ufo import ufo_target

    job, by_id = kit.job, {e.id: e for e in kit.job.identities}
    saved = load_latents(model_dir / "latents.pt", kit.device)
    if saved is not None:
        ids = list(saved["ids"])
        stray = [i for i in book.ids("pending", "running") if i not in ids]
        if stray or any(i not in by_id for i in ids):
            raise GuideError(f"--resume: the joint model in {model_dir} was started with other identities "
                             f"({', '.join(stray or [i for i in ids if i not in by_id])} differ); "
                             "use a new output folder")
        return [by_id[i] for i in ids], saved["w_u"], saved["w_t"]
    todo = [e for e in job.identities if book.state(e.id) != "done"]
    entries, w_u = resolve_latents(todo, kit.G_src, job.erase, kit.w_avg, kit.resources.checkpoint_dir, kit.device,
                                   lambda e, why: book.mark(e.id, "failed", reason=why), kit.photo_models)
    if not entries:
        return [], None, None
    w_t = ufo_target(job.erase.target.method, w_u, kit.w_avg, job.erase.target.distance)
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json(model_dir / "config.json", {"mode": "joint", "identities": [e.id for e in entries],
                                           "erase": job.erase.to_dict(), "sample_identities": job.sample_identities,
                                           "source_generator": str(kit.resources.generator_path or job.generator),
                                           "w_avg": kit.w_avg_source, "device": str(kit.device)})
    write_tensors(model_dir / "latents.pt", ids=[e.id for e in entries], w_u=w_u, w_t=w_t)
    return entries, w_u, w_t


def run_joint(kit: Kit, out_dir: Path, book: StatusBook, *, progress: bool = True,
              log: Callable[[str], None] = print) -> None:
    """Erase every pending identity of kit.job into one model under out_dir (see module doc)."""
    from guide.erase import has_saved_state, train_ltu
    from guide.io import load_generator

    job, model_dir = kit.job, Path(out_dir) / MODEL_DIR
    start = time.perf_counter()
    entries, w_u, w_t = _latents(kit, book, model_dir)
    if not entries:
        log("joint: no identity could be prepared; nothing to erase")
        return
    ids = [e.id for e in entries]
    for e in entries:
        if book.state(e.id) != "done":
            book.mark(e.id, "running", device=str(kit.device))

    marks = model_marks(model_dir)
    if marks.get("complete") and marks.get("identities") == ids:
        log(f"joint: the model of {len(ids)} identities is already trained; writing what is missing")
        G = load_generator(model_dir, device=kit.device)
    else:
        trainer = make_trainer(kit.G_src, w_u, w_t, job.erase.ltu, kit.resources.networks, job.erase.seed,
                               job.sample_identities, kit.device)
        sampled = f", {job.sample_identities} sampled per step" if job.sample_identities and \
            job.sample_identities < len(ids) else ""
        log(f"joint: erasing {len(ids)} identities into one model ({job.erase.ltu.iters} steps{sampled}) on {kit.device}")
        try:
            history = train_ltu(trainer, model_dir, resuming=has_saved_state(model_dir),
                                checkpoint_every=job.checkpoint_every, progress=progress, log=log,
                                desc=f"joint erase ({len(ids)} identities)")
        except GuideError as exc:
            for i in ids:
                book.mark(i, "failed", reason=f"joint training failed: {failure_reason(exc)}")
            return
        G = trainer.G.eval().requires_grad_(False)
        save_model(G, model_dir, kit, {"mode": "joint", "identities": ids, "complete": True,
                                       "steps": trainer.step_index, "sample_identities": job.sample_identities})
        save_losses(model_dir, history)
        merge_json(model_dir / "metrics.json", {"steps": trainer.step_index, "identities": len(ids),
                                                "final_losses": history[-1] if history else {},
                                                "train_seconds": time.perf_counter() - start})

    pairs = kit.retain.pairs(G) if kit.retain.ids else []
    if "evaluation" not in (read_json(model_dir / "metrics.json", {}) or {}):
        merge_json(model_dir / "metrics.json", {**model_metrics(kit, G, pairs), "evaluation": kit.eval_note})
    steps = (read_json(model_dir / "metrics.json", {}) or {}).get("steps")
    for k, entry in enumerate(entries):
        if book.state(entry.id) == "done":
            continue
        t0 = time.perf_counter()
        try:
            settings = identity_settings(kit, entry, {"mode": "joint", "identities": len(ids)})
            write_identity_outputs(kit, G, entry, w_u[k:k + 1], w_t[k:k + 1], Path(out_dir) / entry.id, settings,
                                   {"steps": steps, "joint_identities": len(ids)}, pairs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - its renders failed; the model stands
            book.mark(entry.id, "failed", reason=failure_reason(exc))
            continue
        book.mark(entry.id, "done", seconds=round(time.perf_counter() - t0, 2))
