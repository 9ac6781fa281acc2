"""GUIDE's camera conventions (``unlearn.py``), built on :mod:`eg3d.camera`.

All poses look at a pivot from a sphere of radius 2.7 with an 18.837 deg field of view.
Angles here are *offsets* from the frontal pose (yaw pi/2, pitch pi/2), in radians:

* mapping conditioning: offsets (0, 0);
* progress ("front") images: pitch offset -0.2 (camera slightly above the face);
* before/after renders: 11 yaws evenly spaced in [-pi/12, pi/12], pitch offset -0.2;
* training: one yaw drawn uniformly in [-pi/12, pi/12] per iteration, pitch offset -0.2.

Pivot: GUIDE reads ``rendering_kwargs`` keys that do not exist, so the reference always uses
pivot (0, 0, 0) and radius 2.7 (:data:`GUIDE_PIVOT`, our default). EG3D's own scripts use the
checkpoint's FFHQ pivot (0, 0, 0.2) (:data:`EG3D_FFHQ_PIVOT`); pass ``pivot=EG3D_FFHQ_PIVOT``
for that.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from eg3d.camera import FOV_to_intrinsics, LookAtPoseSampler, camera_params

Device = Union[str, torch.device]
Pivot = Sequence[float]

FOV_DEGREES = 18.837
CAM_RADIUS = 2.7
GUIDE_PIVOT: Tuple[float, float, float] = (0.0, 0.0, 0.0)
EG3D_FFHQ_PIVOT: Tuple[float, float, float] = (0.0, 0.0, 0.2)
PITCH_OFFSET = -0.2
YAW_RANGE = math.pi / 12
NUM_VIEWS = 11


def pose_params(
    yaw: float = 0.0,
    pitch: float = 0.0,
    *,
    pivot: Pivot = GUIDE_PIVOT,
    radius: float = CAM_RADIUS,
    fov: float = FOV_DEGREES,
    device: Device = "cpu",
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """``[1,25]`` camera params for a yaw/pitch offset from the frontal pose."""
    cam2world = LookAtPoseSampler.sample(
        math.pi / 2 + yaw, math.pi / 2 + pitch, pivot, radius=radius, device=device, generator=generator
    )
    return camera_params(cam2world, FOV_to_intrinsics(fov, device=device))


def conditioning_params(device: Device = "cpu", **kwargs) -> torch.Tensor:
    """``[1,25]`` frontal camera that conditions the mapping network (keywords: see pose_params)."""
    return pose_params(0.0, 0.0, device=device, **kwargs)


def front_params(device: Device = "cpu", pitch: float = PITCH_OFFSET, **kwargs) -> torch.Tensor:
    """``[1,25]`` camera of GUIDE's progress images (frontal yaw, pitch offset -0.2)."""
    return pose_params(0.0, pitch, device=device, **kwargs)


def view_yaws(num_views: int = NUM_VIEWS, yaw_range: float = YAW_RANGE) -> List[float]:
    """Yaw offsets of the before/after renders: ``linspace(-yaw_range, yaw_range, num_views)``."""
    return [float(a) for a in np.linspace(-yaw_range, yaw_range, num_views)]


def view_params(
    yaws: Optional[Sequence[float]] = None,
    pitch_offset: float = PITCH_OFFSET,
    pivot: Pivot = GUIDE_PIVOT,
    radius: float = CAM_RADIUS,
    fov: float = FOV_DEGREES,
    device: Device = "cpu",
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """``[N,25]`` cameras at the given yaw offsets (default :func:`view_yaws`), one pose each."""
    yaws = view_yaws() if yaws is None else list(yaws)
    rows = [
        pose_params(y, pitch_offset, pivot=pivot, radius=radius, fov=fov, device=device, generator=generator)
        for y in yaws
    ]
    return torch.cat(rows, dim=0)


def random_training_camera(
    generator: Optional[torch.Generator] = None,
    yaw_range: float = YAW_RANGE,
    pitch_offset: float = PITCH_OFFSET,
    pivot: Pivot = GUIDE_PIVOT,
    radius: float = CAM_RADIUS,
    fov: float = FOV_DEGREES,
    device: Device = "cpu",
) -> Tuple[torch.Tensor, float]:
    """Draw GUIDE's per-iteration training camera; returns (``[1,25]`` params, yaw offset).

    The yaw is uniform in ``[-yaw_range, yaw_range)`` from ``generator`` (torch's global RNG if
    None). GUIDE itself uses numpy's global RNG, whose stream is not reproduced. The pose is
    computed on the generator's device (CPU by default) and then moved to ``device``.
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand((), generator=generator, dtype=torch.float64, device=gen_device).item()
    yaw = (2 * u - 1) * yaw_range
    params = pose_params(
        yaw, pitch_offset, pivot=pivot, radius=radius, fov=fov, device=gen_device, generator=generator
    )
    return params.to(device), yaw
