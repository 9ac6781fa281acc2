"""The FID sample protocol: which images of a generator are compared.

GUIDE's ``evaluate_fid.py``: for sample i, ``z ~ N(0, I)``, a yaw offset ``~ U(-pi/12, pi/12)``,
pitch offset -0.2, mapping conditioned on the frontal camera with truncation psi 1.0 (cutoff 14),
``G.synthesis(w, camera)["image"]``; the pretrained and the unlearned generator get the same z
and yaw. Camera: FOV 18.837 deg, radius 2.7, pivot (0, 0, 0) (the reference reads
``avg_cam_pivot``, a key EG3D checkpoints do not have, so it always looks at the origin).
``synthesis`` runs with its defaults, random backbone noise and random ray sampling, drawn from
the CUDA RNG in sequence: the two generators' images of sample i get *independent* noise and
ray jitter. (z comes from the CPU RNG and the yaw from numpy's, so they stay paired whether or
not the pretrained images are rendered again.)

Two protocols (``SampleSettings.sampling``):

* ``"paper"`` (default): the reference's -- same z and yaw for both generators, independent
  backbone noise and ray jitter. An unchanged generator compared with itself therefore has a
  FID_pre clearly above 0 (the noise floor of the metric at this N), like the paper's numbers.
  Noise and jitter come from a torch generator seeded per batch with (seed, generator role,
  batch range), so the numbers are reproducible; features then depend on the count and the
  batch size, which become part of the cache key (cached features are not extended).
* ``"paired"``: constant backbone noise and deterministic ray sampling, so an image is a function
  of (generator, z, yaw) alone: lower variance, and FID_pre of an unchanged generator is 0. Its
  numbers are systematically lower than the paper's and not comparable with them.

What we do differently, on purpose: every sample's z and yaw come from its own RNG,
``numpy PCG64(SeedSequence([seed, i]))`` (z, then the yaw), so the first n samples are the same
for any N >= n and any batch size. (The reference draws z from torch's global RNG and the yaw
from numpy's; the distributions are the same, the streams are not replayed.)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from guide.cameras import CAM_RADIUS, FOV_DEGREES, GUIDE_PIVOT, PITCH_OFFSET, YAW_RANGE, pose_params
from guide.config import CameraConfig

SAMPLINGS = ("paper", "paired")
ROLES = ("pretrained", "unlearned")
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
    sampling: str = "paper"

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
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
        """True when sample i does not depend on ``num`` or the batch size (paired sampling)."""
        return self.sampling == "paired"

    def key_fields(self, batch: int, role: str = "pretrained") -> Dict[str, object]:
        """Everything that decides the samples: all but ``num`` when :attr:`prefix_stable`, else
        all settings plus the batch size and the generator's role (its own noise stream)."""
        out = self.as_dict()
        if self.prefix_stable:
            out.pop("num")
        else:
            out["batch"] = int(batch)
            out["role"] = role
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
def render_samples(G, settings: SampleSettings, start: int, stop: int, device: DeviceLike,
                   role: str = "pretrained") -> torch.Tensor:
    """Images ``[stop-start, 3, H, W]`` in [-1, 1] of samples ``start .. stop-1`` (see module
    docstring); ``role`` ('pretrained' | 'unlearned') picks the noise stream of the paper protocol."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    device = torch.device(device)
    z, yaws = sample_draws(settings, G.z_dim, start, stop)
    n = len(yaws)
    conditioning = _camera(settings, 0.0, 0.0).repeat(n, 1).to(device)
    cameras = torch.cat([_camera(settings, yaw, settings.pitch_offset) for yaw in yaws]).to(device)
    ws = G.mapping(z.to(device), conditioning, truncation_psi=settings.truncation_psi,
                   truncation_cutoff=settings.truncation_cutoff)
    if settings.sampling == "paired":
        out = G.synthesis(ws, cameras, noise_mode="const", deterministic=True)
    else:
        entropy = [settings.seed, ROLES.index(role), start, stop]
        generator = torch.Generator(device).manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))
        out = G.synthesis(ws, cameras, noise_mode="random", generator=generator)
    return out["image"]


def batch_ranges(start: int, stop: int, batch: int) -> List[Tuple[int, int]]:
    """``(a, b)`` ranges covering ``start .. stop-1`` in batches of ``batch``."""
    batch = max(1, int(batch))
    return [(a, min(a + batch, stop)) for a in range(start, stop, batch)]


__all__ = ["ROLES", "SAMPLINGS", "SampleSettings", "batch_ranges", "render_samples", "sample_draws"]
