"""Mode ``sequential``: identities erased one after another into the same model, like takedown
requests arriving over time.

Stage n erases identity n from the model left by stage n-1 (which is also the frozen source of
that stage's LTU: its targets and global preservation are relative to the model as it stands).
After every stage the model is saved (DIR/model/generator.*, its provenance lists the stages
done) and evaluated: for every identity erased so far, the pixel distances of the current
model's renders to the ORIGINAL generator's renders (before) and to the UFO target rendered by
the original generator; the retain set's pixel distance; ID / ID_others when the evaluator is
available. Each stage appends one line to DIR/model/evaluations.jsonl. Whole-model metrics
(FID) are computed once, for the final model.

Resume: a stage interrupted mid-training continues from DIR/<id>/checkpoint/state.pt; a stage
whose model was saved but not yet marked done is not trained again.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Dict, List

from guide.batch.evaluation import renders
from guide.batch.kit import Kit, identity_metrics, model_metrics
from guide.batch.latents import failure_reason, resolve_latents
from guide.batch.outputs import (MODEL_DIR, identity_settings, load_latents, merge_json, model_marks, read_json,
                                 save_losses, save_model, write_identity_outputs)
from guide.batch.sampling import make_trainer
from guide.batch.status import StatusBook
from guide.errors import GuideError
from guide.io.atomic import write_text_atomic

EVALUATIONS = "evaluations.jsonl"


def read_evaluations(model_dir: Path) -> List[dict]:
    """The per-stage evaluations recorded so far (one JSON object a line; damaged: one line error)."""
    from guide.io.documents import parse_json

    path = Path(model_dir) / EVALUATIONS
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [parse_json(line, f"{path} line {i + 1}") for i, line in enumerate(lines) if line.strip()]


def _write_evaluations(model_dir: Path, rows: List[dict]) -> None:
    text = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    write_text_atomic(Path(model_dir) / EVALUATIONS, text)


class _Erased:
    """Latents and original-generator renders of the identities erased so far."""

    def __init__(self, kit: Kit):
        self.kit = kit
        self.items: Dict[str, tuple] = {}

    def add(self, ident: str, w_u, w_t) -> None:
        kit = self.kit
        self.items[ident] = (w_u, renders(kit.G_src, w_u, kit.camera, kit.views),
                             renders(kit.G_src, w_t, kit.camera, kit.views))

    def evaluate(self, G, pairs) -> Dict[str, dict]:
        return {i: identity_metrics(self.kit, G, w_u, pairs, before=before, target=target)
                for i, (w_u, before, target) in self.items.items()}


def _prepare_stage(kit: Kit, book: StatusBook, entry, out: Path, stages: List[str]):
    """(w_u, w_t, resuming) of a stage about to train, or None when its latent fails."""
    from guide.erase import ERASE_OUTPUTS, STATE_FILE, write_json, write_tensors
    from guide.io.folders import remove_outputs
    from guide.ufo import ufo_target

    saved = load_latents(out / "latents.pt", kit.device)
    if saved is not None and (out / STATE_FILE).is_file() and book.state(entry.id) == "running":
        return saved["w_u"], saved["w_t"], True
    job = kit.job
    ok, w_u = resolve_latents([entry], kit.G_src, job.erase, kit.w_avg, kit.resources.checkpoint_dir, kit.device,
                              lambda e, why: book.mark(e.id, "failed", reason=why), kit.photo_models)
    if not ok:
        return None
    w_t = ufo_target(job.erase.target.method, w_u, kit.w_avg, job.erase.target.distance)
    if out.exists():
        remove_outputs(out, ERASE_OUTPUTS)  # an earlier failed attempt's files (only those)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", identity_settings(kit, entry, {"mode": "sequential", "stage": len(stages) + 1,
                                                                   "after_stages": list(stages)}))
    write_tensors(out / "latents.pt", w_u=w_u, w_t=w_t)
    return w_u, w_t, False


def run_sequential(kit: Kit, out_dir: Path, book: StatusBook, *, progress: bool = True,
                   log: Callable[[str], None] = print) -> None:
    """Erase the pending identities one by one into the batch's model (see module doc)."""
    from guide.erase import train_ltu
    from guide.io import load_generator

    job, out_dir = kit.job, Path(out_dir)
    model_dir = out_dir / MODEL_DIR
    model_dir.mkdir(parents=True, exist_ok=True)
    stages: List[str] = list(model_marks(model_dir).get("stages", []))
    G_cur = load_generator(model_dir, device=kit.device) if stages else kit.G_src
    evaluations = read_evaluations(model_dir)[: len(stages)]
    erased = _Erased(kit)
    for ident in stages:
        saved = load_latents(out_dir / ident / "latents.pt", kit.device)
        erased.add(ident, saved["w_u"], saved["w_t"])

    changed = False
    for entry in job.identities:
        if book.state(entry.id) == "done":
            continue
        out, start = out_dir / entry.id, time.perf_counter()
        extra: dict = {}
        if entry.id in stages:  # trained and saved before an interruption
            saved = load_latents(out / "latents.pt", kit.device)
            w_u, w_t, G_new = saved["w_u"], saved["w_t"], G_cur
        else:
            prepared = _prepare_stage(kit, book, entry, out, stages)
            if prepared is None:
                continue
            w_u, w_t, resuming = prepared
            book.mark(entry.id, "running", device=str(kit.device))
            log(f"sequential: stage {len(stages) + 1}: erasing {entry.describe()}")
            trainer = make_trainer(G_cur, w_u, w_t, job.erase.ltu, kit.resources.networks, job.erase.seed,
                                   None, kit.device)
            try:
                history = train_ltu(trainer, out, resuming=resuming, checkpoint_every=job.checkpoint_every,
                                    progress=progress, log=log, desc=f"stage {len(stages) + 1} ({entry.id})")
            except GuideError as exc:
                book.mark(entry.id, "failed", reason=failure_reason(exc))
                continue
            G_new = trainer.G.eval().requires_grad_(False)
            stages.append(entry.id)
            save_model(G_new, model_dir, kit, {"mode": "sequential", "stages": list(stages)})
            save_losses(out, history)
            extra = {"steps": trainer.step_index, "final_losses": history[-1] if history else {}}
        try:
            stage = stages.index(entry.id) + 1
            erased.add(entry.id, w_u, w_t)
            pairs = kit.retain.pairs(G_new) if kit.retain.ids else []
            settings = read_json(out / "config.json", {})
            write_identity_outputs(kit, G_new, entry, w_u, w_t, out, settings, {**extra, "stage": stage}, pairs)
            evaluations = evaluations[: stage - 1] + [{
                "stage": stage, "erased": entry.id, "identities": erased.evaluate(G_new, pairs),
                "model": model_metrics(kit, G_new, pairs, whole_model=False)}]
            _write_evaluations(model_dir, evaluations)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the stage's model stands; its report failed
            book.mark(entry.id, "failed", reason=f"erased, but its evaluation failed: {failure_reason(exc)}")
            G_cur, changed = G_new, True
            continue
        book.mark(entry.id, "done", seconds=round(time.perf_counter() - start, 2), stage=stage)
        G_cur, changed = G_new, True

    if stages and (changed or "evaluation" not in (read_json(model_dir / "metrics.json", {}) or {})):
        pairs = kit.retain.pairs(G_cur) if kit.retain.ids else []
        merge_json(model_dir / "metrics.json", {"stages": stages, **model_metrics(kit, G_cur, pairs),
                                                "evaluation": kit.eval_note})
