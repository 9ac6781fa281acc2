"""Shared helper of the trainer tests: an LTUTrainer on the tiny generator."""
import torch

from guide.config import LTUConfig
from guide.render import camera_for
from guide.trainer import LTUTrainer
from guide.ufo import extrapolated_target


def make_trainer(factory, lpips, id_loss, seed=0, **overrides) -> LTUTrainer:
    """A trainer erasing one fixed random identity (latent seed 123) towards its GUIDE target;
    `overrides` are LTUConfig fields (iters defaults to 3)."""
    G = factory()
    g = torch.Generator().manual_seed(123)
    c = camera_for(LTUConfig().camera, 0.0, 0.0)
    w_avg = G.backbone.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    w_u = G.mapping(torch.randn(1, G.z_dim, generator=g), c)
    w_t = extrapolated_target(w_u, w_avg, 30.0)
    overrides.setdefault("iters", 3)
    return LTUTrainer(G, w_u, w_t, LTUConfig(**overrides), lpips=lpips, id_loss=id_loss, seed=seed)
