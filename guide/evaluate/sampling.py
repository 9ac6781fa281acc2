"""The FID sample protocol: which images of a generator are compared.

GUIDE's ``evaluate_fid.py``: for sample i, ``z ~ N(0, I)``, a yaw offset ``~ U(-pi/12, pi/12)``,
pitch offset -0.2, mapping conditioned on the frontal camera with truncation psi 1.0 (cutoff 14),
``G.synthesis(w, camera)["image"]``; the pretrained and the unlearned generator get the same z
and yaw. Camera: FOV 18.837 deg, radius 2.7, pivot (0, 0, 0) (the reference reads
``avg_cam_pivot``, a key EG3D checkpoints do not have, so it always looks at the origin).

What we do differently, on purpose:

* Every sample's draws come from its own RNG, ``numpy PCG64(SeedSequence([seed, i]))``: z, then
  the yaw. The first n samples are therefore the same for any N >= n and any batch size, so
  features can be cached and extended. (The reference draws z from torch's global RNG and the
  yaw from numpy's, which cannot be reproduced outside that script.)
* Noise: ``noise_mode="const"`` with deterministic ray sampling by default, so an image is a
  function of (generator, z, yaw) alone. The reference renders with fresh random noise, which
  changes fine texture only; ``noise_mode="random"`` is available and then draws the noise from
  a torch generator seeded per batch (features then depend on the count and batch size, which
  become part of the cache key, and cached features are not extended).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from guide.cameras import CAM_RADIUS, FOV_DEGREES, GUIDE_PIVOT, PITCH_OFFSET, YAW_RANGE, pose_params
from guide.config import CameraConfig

NOISE_MODES = ("const", "random")
DeviceLike = Union[str, torch.device]


@dataclass(frozen=True)
class SampleSettings:
    """The paper's FID sampling protocol (defaults) plus the seed; ``num`` samples per generator."""

    num: int = 5000
    seed: int = 0
    yaw_range: float = YAW_RANGE
    pitch_offset: float = PITCH_OFFSET
    truncation_psi: float = 1.0
    truncation_cutoff: Optional[int] = 14
    fov_degrees: float = FOV_DEGREES
    pivot: Tuple[float, float, float] = GUIDE_PIVOT
    radius: float = CAM_RADIUS
    noise_mode: str = "const"

    def __post_init__(self) -> None:
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {self.noise_mode!r}")
        if self.num < 2:
            raise ValueError(f"FID needs at least 2 samples, got num={self.num}")

    @classmethod
    def with_camera(cls, camera: CameraConfig, **kwargs) -> "SampleSettings":
        """Settings whose FOV, pivot and radius are those of ``camera`` (e.g. an erasure's)."""
        return cls(fov_degrees=float(camera.fov_degrees), pivot=tuple(float(v) for v in camera.pivot),
                   radius=float(camera.radius), **kwargs)

    def as_dict(self) -> Dict[str, object]:
        out = dataclasses.asdict(self)
        out["pivot"] = list(self.pivot)
        return out

    @property
    def prefix_stable(self) -> bool:
        """True when sample i does not depend on ``num`` or the batch size (constant noise)."""
        return self.noise_mode == "const"

    def key_fields(self, batch: int) -> Dict[str, object]:
        """Everything that decides the samples: all but ``num`` when :attr:`prefix_stable`, else
        all settings plus the batch size."""
        out = self.as_dict()
        if self.prefix_stable:
            out.pop("num")
        else:
            out["batch"] = int(batch)
        return out


def sample_draws(settings: SampleSettings, z_dim: int, start: int, stop: int) -> Tuple[torch.Tensor, List[float]]:
    """z ``[stop-start, z_dim]`` (float32) and the yaw offsets of samples ``start .. stop-1``."""
    zs, yaws = [], []
    for i in range(start, stop):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([settings.seed, i])))
        zs.append(rng.standard_normal(z_dim))
        yaws.append(float(rng.uniform(-settings.yaw_range, settings.yaw_range)))
    return torch.from_numpy(np.stack(zs).astype(np.float32)), yaws


def _camera(settings: SampleSettings, yaw: float, pitch: float) -> torch.Tensor:
    # computed on the CPU with a scratch RNG: the global RNG is left alone
    return pose_params(yaw, pitch, pivot=settings.pivot, radius=settings.radius, fov=settings.fov_degrees,
                       generator=torch.Generator())


@torch.no_grad()
def render_samples(G, settings: SampleSettings, start: int, stop: int, device: DeviceLike) -> torch.Tensor:
    """Images ``[stop-start, 3, H, W]`` in [-1, 1] of samples ``start .. stop-1`` (see module docstring)."""
    device = torch.device(device)
    z, yaws = sample_draws(settings, G.z_dim, start, stop)
    n = len(yaws)
    conditioning = _camera(settings, 0.0, 0.0).repeat(n, 1).to(device)
    cameras = torch.cat([_camera(settings, yaw, settings.pitch_offset) for yaw in yaws]).to(device)
    ws = G.mapping(z.to(device), conditioning, truncation_psi=settings.truncation_psi,
                   truncation_cutoff=settings.truncation_cutoff)
    if settings.noise_mode == "const":
        out = G.synthesis(ws, cameras, noise_mode="const", deterministic=True)
    else:
        generator = torch.Generator(device).manual_seed(int(np.random.SeedSequence([settings.seed, start,
                                                                                      stop]).generate_state(1)[0]))
        out = G.synthesis(ws, cameras, noise_mode="random", generator=generator)
    return out["image"]


def batch_ranges(start: int, stop: int, batch: int) -> List[Tuple[int, int]]:
    """``(a, b)`` ranges covering ``start .. stop-1`` in batches of ``batch``."""
    batch = max(1, int(batch))
    return [(a, min(a + batch, stop)) for a in range(start, stop, batch)]


__all__ = ["NOISE_MODES", "SampleSettings", "batch_ranges", "render_samples", "sample_draws"]
