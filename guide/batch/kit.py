"""Everything one batch worker holds on its device: source generator, loss networks, mean
latent, retain set, the evaluator and the photo models (GOAE encoder and face detector, loaded
on the first photo) -- built once per process (or injected in-process)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch

from guide.batch.evaluation import Evaluator, RetainSet, evaluator_for, pixel_l1, renders
from guide.batch.latents import retain_latents
from guide.batch.resources import Resources, build_resources, check_device
from guide.batch.schema import BatchJob
from guide.inversion import PhotoModels

AUTO = "auto"


@dataclass
class Kit:
    job: BatchJob
    device: torch.device
    resources: Resources
    w_avg: torch.Tensor
    w_avg_source: str
    retain: RetainSet
    evaluator: Optional[Evaluator]
    eval_note: str
    retain_skipped: Dict[str, str] = field(default_factory=dict)
    photo_models: PhotoModels = field(default_factory=PhotoModels)

    @property
    def G_src(self):
        return self.resources.G_src

    @property
    def camera(self):
        return self.job.erase.ltu.camera

    @property
    def views(self) -> int:
        return self.job.evaluation.views


def make_kit(job: BatchJob, device: str, resources: Optional[Resources] = None, evaluator=AUTO) -> Kit:
    """Build (or adopt) the resources on `device`, the mean latent, the retain set and the evaluator."""
    from guide.erase import load_w_avg

    dev = check_device(device)
    res = resources if resources is not None else build_resources(job, device)
    res.G_src = res.G_src.to(dev).eval().requires_grad_(False)
    w_avg, w_avg_source = load_w_avg(res.G_src, res.checkpoint_dir, dev, job.erase.inversion.w_avg)
    photo_models = PhotoModels()
    ids, latents, skipped = retain_latents(job.retain, res.G_src, job.erase, w_avg, res.checkpoint_dir, dev,
                                           photo_models)
    retain = RetainSet(ids, latents, res.G_src, job.erase.ltu.camera, job.evaluation.views)
    if evaluator == AUTO:
        evaluator, note = evaluator_for(job, res.checkpoint_dir, dev)
    else:
        note = "pixel metrics + " + evaluator.description if evaluator is not None else "pixel metrics only"
    return Kit(job, dev, res, w_avg, w_avg_source, retain, evaluator, note, skipped, photo_models)


_KITS: Dict[tuple, Kit] = {}


def cached_kit(job: BatchJob, device: str) -> Kit:
    """make_kit once per worker process (same job settings and device)."""
    import json

    key = (json.dumps(job.settings(), sort_keys=True, default=str), json.dumps(job.to_dict()["retain"]),
           str(job.checkpoints), device)
    if key not in _KITS:
        _KITS.clear()
        _KITS[key] = make_kit(job, device)
    return _KITS[key]


def model_metrics(kit: Kit, G, pairs, *, whole_model: bool = True) -> dict:
    """Retain-set pixel metrics of G and (whole_model) the evaluator's model metrics (FID)."""
    out = dict(RetainSet.pixel_metrics(kit.retain.ids, pairs))
    if kit.retain_skipped:
        out["retain_skipped"] = dict(kit.retain_skipped)
    if whole_model and kit.evaluator is not None:
        out.update(kit.evaluator.model(kit.G_src, G, kit.camera))
    return out


def identity_metrics(kit: Kit, G, w_u: torch.Tensor, pairs, *, before: Optional[torch.Tensor] = None,
                     target: Optional[torch.Tensor] = None) -> dict:
    """Metrics of G for one erased latent w_u [1,...]: with `before`/`target` renders the pixel
    distances of G's renders to them; ID/ID_others (over the retain `pairs`) via the evaluator."""
    out: dict = {}
    if before is None and target is None and kit.evaluator is None:
        return out
    after = renders(G, w_u, kit.camera, kit.views)
    if before is not None:
        out["pixel_l1_before_after"] = pixel_l1(after, before)
    if target is not None:
        out["pixel_l1_after_target"] = pixel_l1(after, target)
    if kit.evaluator is not None:
        src = before if before is not None else renders(kit.G_src, w_u, kit.camera, kit.views)
        out.update(kit.evaluator.identity(src, after, pairs))
    return out
