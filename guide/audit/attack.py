"""The attacks that need the person's photo: re-inversion and the optimisation attack.

* Re-inversion: the photo's GOAE latent rendered from the evaluation views; score = mean ID
  similarity of the renders to the photo.
* Optimisation attack: Adam on a W+ latent (started from the re-inverted latent and from w_avg)
  so that the generator's render at the photo's estimated camera reproduces the aligned photo,
  loss = ``lpips · LPIPS + id · (1 - cos ArcFace)``; constant noise and deterministic ray
  sampling, so the attack is a deterministic function of its inputs. The latent with the lowest
  loss over the steps is rendered from the evaluation views and scored like the re-inversion;
  the best start counts.

Both run through the unlearned generator and, as the ceiling, through the source generator.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from guide.audit.photo import Photo
from guide.audit.scoring import Embedder, similarities, view_scores
from guide.config import AttackConfig, CameraConfig
from guide.errors import GuideError

START_KINDS = ("inverted", "average")
LOSS_RECORD_EVERY = 10  # audit.json keeps the loss every this many steps


def optimise_latent(G, target: torch.Tensor, camera: torch.Tensor, w_init: torch.Tensor, lpips: nn.Module,
                    id_loss: Optional[nn.Module], config: AttackConfig, *, progress: bool = False,
                    desc: str = "attack") -> Tuple[torch.Tensor, List[float]]:
    """Adam on a copy of ``w_init`` ``[1, num_ws, w_dim]`` so that ``G(w, camera)`` matches ``target``
    ``[1, 3, H, W]``; returns the latent with the lowest loss seen (the start included, so the
    attack never ends worse than it began) and the loss of each step's latent. ``G`` stays frozen."""
    from tqdm import tqdm

    w = w_init.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=config.lr)
    was_training = G.training
    G.eval()
    losses: List[float] = []
    best = (math.inf, w.detach().clone())
    try:
        for step in tqdm(range(config.steps), desc=desc, unit="step", disable=not progress, dynamic_ncols=True):
            image = G.synthesis(w, camera, noise_mode="const", deterministic=True)["image"]
            loss = config.lpips * lpips(image, target).mean()
            if id_loss is not None and config.id:
                loss = loss + config.id * id_loss(image, target)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise GuideError(f"{desc}: the attack's loss became non-finite at step {step} (lower --attack-lr?)")
            losses.append(value)
            if value < best[0]:
                best = (value, w.detach().clone())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        G.train(was_training)
    return best[1], losses


def _start_latent(kind: str, photo: Photo, w_avg: torch.Tensor) -> Optional[torch.Tensor]:
    if kind == "inverted":
        return photo.w_inverted
    if kind == "average":
        return w_avg
    raise ValueError(f"unknown attack start {kind!r}; expected one of {START_KINDS}")


def photo_attacks(generators: Dict[str, nn.Module], photo: Photo, w_avg: torch.Tensor, camera: CameraConfig,
                  yaws: List[float], networks, config: AttackConfig, embed: Embedder, *,
                  progress: bool = False) -> Tuple[dict, dict, Dict[str, torch.Tensor]]:
    """Re-inversion and optimisation attack on each generator (``{"unlearned": G, "source": G}``).

    Returns (re-inversion record, attack record, renders for the figure keyed
    ``"<reinversion|attack>/<generator>"``)."""
    from guide.render import render_views

    device = w_avg.device
    photo_emb = embed.uint8([photo.image])
    renders: Dict[str, torch.Tensor] = {}

    def scored(G, w) -> Tuple[dict, torch.Tensor]:
        images = render_views(G, w, camera, yaws)
        return view_scores(similarities(embed(images), photo_emb)), images

    reinversion: dict = {}
    if photo.w_inverted is None:
        reinversion["skipped"] = "no GOAE re-inversion of the photo"
    else:
        for name, G in generators.items():
            reinversion[name], renders[f"reinversion/{name}"] = scored(G, photo.w_inverted.to(device))

    attack: dict = {"settings": {"steps": config.steps, "lr": config.lr, "lpips": config.lpips,
                                 "id": config.id if networks.id_loss is not None else 0.0,
                                 "starts": list(config.starts)}}
    for name, G in generators.items():
        target = photo.tensor(G.img_resolution, device)
        runs, best = {}, None
        for kind in config.starts:
            w0 = _start_latent(kind, photo, w_avg)
            if w0 is None:
                runs[kind] = {"skipped": "no re-inverted latent to start from"}
                continue
            w, losses = optimise_latent(G, target, photo.camera.to(device), w0.to(device), networks.lpips,
                                        networks.id_loss, config, progress=progress,
                                        desc=f"attack on the {name} generator from {kind}")
            score, images = scored(G, w)
            runs[kind] = {**score, "loss_first": losses[0] if losses else None,
                          "loss_best": min(losses) if losses else None, "loss_last": losses[-1] if losses else None,
                          "losses": losses[::LOSS_RECORD_EVERY], "losses_every": LOSS_RECORD_EVERY}
            if score["mean"] is not None and (best is None or score["mean"] > runs[best]["mean"]):
                best = kind
                renders[f"attack/{name}"] = images
        attack[name] = {"runs": runs, "best_start": best, "mean": runs[best]["mean"] if best else None}
    return reinversion, attack, renders
