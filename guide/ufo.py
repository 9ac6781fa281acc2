"""UFO (un-identifying face on latent space): choose the latent the erased identity is mapped to.

* ``average``: the mean latent ``w_avg`` (the paper's baseline).
* ``extrapolated``: move from the mean *away* from the identity by a fixed distance,
  ``w_t = w_avg - d * (w_u - w_avg) / ||w_u - w_avg||`` with d = 30 (GUIDE). As in the
  reference, the norm is taken over the whole ``[1, 14, 512]`` tensor (not per row).
"""
from __future__ import annotations

import torch

TARGETS = ("extrapolated", "average")
DEFAULT_DISTANCE = 30.0


def average_target(w_u: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
    """The mean latent, broadcast to w_u's shape."""
    return w_avg.expand_as(w_u).clone()


def extrapolated_target(w_u: torch.Tensor, w_avg: torch.Tensor, distance: float = DEFAULT_DISTANCE) -> torch.Tensor:
    """w_avg - distance · (w_u - w_avg) / ||w_u - w_avg|| (one norm per latent, over all rows)."""
    if w_u.ndim != 3:
        raise ValueError(f"w_u must be [N, num_ws, w_dim], got {tuple(w_u.shape)}")
    offset = w_u - w_avg
    norms = offset.flatten(1).norm(p=2, dim=1).reshape(-1, 1, 1)
    if bool((norms == 0).any()):
        raise ValueError("w_u equals w_avg: the extrapolated target has no direction")
    return w_avg - offset / norms * distance


def ufo_target(method: str, w_u: torch.Tensor, w_avg: torch.Tensor, distance: float = DEFAULT_DISTANCE) -> torch.Tensor:
    """Target latent for `method` in TARGETS."""
    if method == "average":
        return average_target(w_u, w_avg)
    if method == "extrapolated":
        return extrapolated_target(w_u, w_avg, distance)
    raise ValueError(f"unknown UFO target {method!r}; expected one of {TARGETS}")
