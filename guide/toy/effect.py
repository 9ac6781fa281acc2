"""Measure what an erase does in the toy world (the effect tests and `guide demo` numbers).

:func:`erase_toy` runs LTU on a random toy identity (GUIDE or the baseline preset, toy-sized);
:func:`measure_effect` compares the source and the unlearned generator with the toy CurricularFace
over the evaluation yaws:

* ``id_erased``: ID of the erased identity (source vs unlearned render, same view);
* ``id_others``: the same for random other identities;
* ``others_psnr``: pixel PSNR (dB) between the others' source and unlearned renders;
* ``id_to_target``: similarity of the unlearned identity to the *source's* render of GUIDE's UFO
  target (``w_avg - 30 (w_u - w_avg)/||w_u - w_avg||``, computed here independently of
  :mod:`guide.ufo`), ``id_target_before`` the same for the source's render of w_u (where the head
  starts from), and ``id_to_average`` to the source's render of w_avg;
* ``id_neighbours``: ID of latents near the erased one (``w_u`` moved ``NEIGHBOUR_ALPHA`` towards
  random latents, inside the adjacency loss's range).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch

NEIGHBOUR_ALPHA = 6.0
NUM_VIEWS = 5
NUM_OTHERS = 6
NUM_NEIGHBOURS = 4
OTHERS_SEED = 20240617
TARGET_DISTANCE = 30.0  # the paper's d, restated so a broken guide.ufo cannot move the yardstick


@dataclass
class ToyErase:
    """One erase in the toy world."""

    method: str
    G: torch.nn.Module
    w_u: torch.Tensor
    w_t: torch.Tensor
    w_avg: torch.Tensor
    seconds: float


def erase_toy(world, method: str = "guide", identity_seed: int = 0, iters: Optional[int] = None,
              seed: int = 0) -> ToyErase:
    """Erase random identity ``identity_seed`` from the toy generator with ``method``'s toy preset."""
    from guide.erase import Identity, identity_latent, load_w_avg
    from guide.toy.world import TOY_ITERS, toy_erase_config
    from guide.trainer import LTUTrainer
    from guide.ufo import ufo_target

    config = toy_erase_config(method, iters if iters is not None else TOY_ITERS, seed)
    torch.manual_seed(config.seed)
    G_src = world.G
    w_avg, _ = load_w_avg(G_src, None, "cpu", "mapping")
    w_u = identity_latent(Identity("random", identity_seed), G_src, config, w_avg, None, "cpu")
    w_t = ufo_target(config.target.method, w_u, w_avg, config.target.distance)
    start = time.time()
    trainer = LTUTrainer(G_src, w_u, w_t, config.ltu, lpips=world.networks.lpips, id_loss=world.networks.id_loss,
                         seed=config.seed)
    for _ in range(config.ltu.iters):
        trainer.step()
    G_src.eval()
    return ToyErase(method, trainer.G.eval().requires_grad_(False), w_u, w_t, w_avg, time.time() - start)


@dataclass
class Effect:
    """The numbers of one toy erase (see the module doc)."""

    id_erased: float
    id_others: float
    others_psnr: float
    id_to_target: float
    id_target_before: float
    id_to_average: float
    id_neighbours: float
    seconds: float

    def to_dict(self) -> Dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def _pairs_id(scorer, pairs) -> np.ndarray:
    return np.array([scorer.pair_similarities(list(b), list(a))[0].mean() for b, a in pairs])


def _psnr(pairs) -> float:
    diffs = [((b.astype(np.float64) - a.astype(np.float64)) / 255.0) ** 2 for b, a in pairs]
    return float(10 * np.log10(1.0 / np.mean([d.mean() for d in diffs])))


def neighbour_latents(G, w_u: torch.Tensor, count: int = NUM_NEIGHBOURS, alpha: float = NEIGHBOUR_ALPHA,
                      seed: int = 7) -> torch.Tensor:
    """``w_u`` moved by ``alpha`` (W+ norm) towards ``count`` random mapped latents, as the adjacency loss samples."""
    from guide.cameras import conditioning_params

    z = torch.randn(count, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        w_r = G.mapping(z, conditioning_params().expand(count, -1))
    offset = w_r - w_u
    return w_u + alpha * offset / offset.flatten(1).norm(dim=1).reshape(-1, 1, 1)


def measure_effect(world, erase: ToyErase) -> Effect:
    """Compare the source and unlearned toy generators (see the module doc)."""
    from guide.config import CameraConfig
    from guide.evaluate.identity import render_before_after
    camera, scorer, G_src, G = CameraConfig(), world.scorer(), world.G, erase.G

    def pairs(Ga, Gb, latents):
        return render_before_after(Ga, Gb, latents, camera, NUM_VIEWS, progress=False)

    z = torch.randn(NUM_OTHERS, G_src.z_dim, generator=torch.Generator().manual_seed(OTHERS_SEED))
    from guide.cameras import conditioning_params

    with torch.no_grad():
        others = G_src.mapping(z, conditioning_params().expand(NUM_OTHERS, -1))
    other_pairs = pairs(G_src, G, others)
    offset = erase.w_u - erase.w_avg  # GUIDE's target, written out here rather than taken from guide.ufo
    target = erase.w_avg - TARGET_DISTANCE * offset / offset.flatten(1).norm(dim=1).reshape(-1, 1, 1)
    (before, after), = pairs(G_src, G, erase.w_u)
    (target_img, _), (average_img, _) = pairs(G_src, G_src, torch.cat([target, erase.w_avg]))
    return Effect(
        id_erased=float(_pairs_id(scorer, [(before, after)])[0]),
        id_others=float(_pairs_id(scorer, other_pairs).mean()),
        others_psnr=_psnr(other_pairs),
        id_to_target=float(_pairs_id(scorer, [(target_img, after)])[0]),
        id_target_before=float(_pairs_id(scorer, [(target_img, before)])[0]),
        id_to_average=float(_pairs_id(scorer, [(average_img, after)])[0]),
        id_neighbours=float(_pairs_id(scorer, pairs(G_src, G, neighbour_latents(G_src, erase.w_u))).mean()),
        seconds=erase.seconds,
    )


def run_effect(world, method: str, identity_seed: int = 0, iters: Optional[int] = None) -> Tuple[ToyErase, Effect]:
    """Erase and measure."""
    erase = erase_toy(world, method, identity_seed, iters)
    return erase, measure_effect(world, erase)
