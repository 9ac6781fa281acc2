"""Metrics of a batch: pixel metrics always, the paper's ID / ID_others / FID when possible.

Pixel metrics need nothing but the generators: for each erased identity the mean absolute
pixel difference between renders (before = source generator, after = unlearned, target = the
source's render of the UFO target), and for the retain set the difference between the source
and the unlearned generator's renders of each retained identity (0 = perfectly preserved).

ID, ID_others, FID_pre and ΔFID_real come from the evaluation package ``guide.evaluate``, used
only through :class:`PackageEvaluator` (a small adapter: swap in any object with the same two
methods, e.g. a stub in tests) and only when it is importable. Failures of the adapter are
recorded in the report (``evaluation_error``), never fatal to the batch.
"""
from __future__ import annotations

import importlib
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import torch

from guide.batch.schema import BatchJob, EvaluationOptions
from guide.config import CameraConfig


class Evaluator(Protocol):
    """What the batch asks of an evaluation backend."""

    description: str

    def identity(self, before: torch.Tensor, after: torch.Tensor,
                 retain_pairs: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> Dict:
        """ID (and ID_others over retain_pairs) from [V,3,H,W] renders in [-1,1]."""

    def model(self, G_src, G, camera: CameraConfig) -> Dict:
        """Whole-model metrics (FID_pre, ΔFID_real)."""


# ------------------------------------------------------------------------------ pixels


def renders(G, ws: torch.Tensor, camera: CameraConfig, views: int) -> torch.Tensor:
    """[V,3,H,W] deterministic renders of one latent [1,num_ws,w_dim] from `views` yaws."""
    from guide.cameras import view_yaws
    from guide.render import render_views

    return render_views(G, ws, camera, view_yaws(views, camera.yaw_range))


def pixel_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


class RetainSet:
    """The retained identities' latents and their source renders (computed once)."""

    def __init__(self, ids: List[str], latents: Optional[torch.Tensor], G_src, camera: CameraConfig, views: int):
        self.ids = ids
        self.latents = latents
        self.camera = camera
        self.views = views
        self.before = [renders(G_src, latents[k:k + 1], camera, views) for k in range(len(ids))] if ids else []

    def pairs(self, G) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """(source, unlearned) renders of each retained identity."""
        return [(b, renders(G, self.latents[k:k + 1], self.camera, self.views)) for k, b in enumerate(self.before)]

    @staticmethod
    def pixel_metrics(ids: List[str], pairs) -> Dict:
        if not ids:
            return {}
        per = {i: pixel_l1(b, a) for i, (b, a) in zip(ids, pairs)}
        return {"retain_pixel_l1": sum(per.values()) / len(per), "retain_pixel_l1_per_identity": per}


# ------------------------------------------------------------------------------ package


def evaluation_package_available() -> Tuple[bool, str]:
    """Whether guide.evaluate can be used (it may be absent or half-written)."""
    try:
        for name in ("guide.evaluate.identity", "guide.evaluate.fid", "guide.evaluate.pipeline"):
            importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import problem means: not available
        return False, f"guide.evaluate is not usable ({type(exc).__name__}: {exc})"
    return True, "guide.evaluate"


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


class PackageEvaluator:
    """Adapter onto guide.evaluate (networks built on first use; errors become report entries)."""

    def __init__(self, options: EvaluationOptions, checkpoint_dir, device, *, do_id: bool, do_fid: bool,
                 random_weights: bool = False, toy: bool = False):
        self.options = options
        self.do_id = do_id
        self.do_fid = do_fid
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.random_weights = random_weights
        self.toy = toy  # the toy world's scorer and features (guide.toy)
        self._networks = None
        self.description = "guide.evaluate: " + ", ".join(
            n for n, on in (("ID/ID_others", do_id), ("FID_pre/ΔFID_real", do_fid)) if on)

    def networks(self):
        if self._networks is None and self.toy:
            from guide.toy.world import toy_world

            self._networks = toy_world(self.device).eval_networks(self.device)
        if self._networks is None:
            from guide.evaluate.pipeline import EvalNetworks

            self._networks = EvalNetworks(checkpoint_dir=self.checkpoint_dir, device=self.device,
                                          random_weights=self.random_weights)
        return self._networks

    def identity(self, before, after, retain_pairs) -> Dict:
        if not self.do_id:
            return {}
        try:
            from guide.evaluate.identity import evaluate_identity
            from guide.render import to_uint8

            pairs = [(list(to_uint8(b)), list(to_uint8(a))) for b, a in retain_pairs]
            result = evaluate_identity(list(to_uint8(before)), list(to_uint8(after)), self.networks().identity(),
                                       others_pairs=pairs, others=f"{len(pairs)} retained identities",
                                       progress=False)
            return result.metrics()
        except Exception as exc:  # noqa: BLE001 - recorded, the batch goes on
            return {"evaluation_error": _one_line(exc)}

    def model(self, G_src, G, camera) -> Dict:
        if not self.do_fid:
            return {}
        try:
            from guide.evaluate.fid import evaluate_fid
            from guide.evaluate.pipeline import resolve_real
            from guide.evaluate.sampling import SampleSettings

            note = {}
            try:
                stats, source = resolve_real(self.options.real, self.checkpoint_dir)
            except Exception as exc:  # noqa: BLE001 - FID_pre still works without real statistics
                stats, source = None, None
                note = {"delta_FID_real_skipped": _one_line(exc)}
            settings = SampleSettings.with_camera(camera, num=self.options.fid_samples, seed=self.options.fid_seed)
            result = evaluate_fid(G_src, G, self.networks().features(), settings, real=stats, real_source=source,
                                  device=self.device, progress=False)
            return {**result.metrics(), **note}
        except Exception as exc:  # noqa: BLE001
            return {"evaluation_error": _one_line(exc)}


def evaluator_for(job: BatchJob, checkpoint_dir, device) -> Tuple[Optional[Evaluator], str]:
    """The package adapter when the job asks for ID/FID and guide.evaluate is importable, else
    None; and a line saying which metrics the report will hold."""
    opts = job.evaluation
    do_id = opts.id == "true" or (opts.id == "auto" and job.networks in ("checkpoints", "toy"))
    if not (do_id or opts.fid):
        why = "evaluation.id auto scores ID only with networks: checkpoints or toy" if opts.id == "auto" else \
            "evaluation.id and evaluation.fid are off"
        return None, f"pixel metrics only ({why})"
    ok, why = evaluation_package_available()
    if not ok:
        return None, f"pixel metrics only: {why}"
    evaluator = PackageEvaluator(opts, checkpoint_dir, device, do_id=do_id, do_fid=opts.fid,
                                 random_weights=job.networks == "random", toy=job.networks == "toy")
    return evaluator, f"pixel metrics + {evaluator.description}"
