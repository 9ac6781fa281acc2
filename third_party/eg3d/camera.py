"""Camera helpers matching EG3D's ``camera_utils`` number for number.

Conventions (see the EG3D paper / official code): world y is up; a pose is given by a
yaw ``h`` (azimuth around y, radians) and a pitch ``v`` (polar angle from +y, radians);
``h = v = pi/2`` puts the camera on the +z axis. cam2world matrices are ``[N,4,4]`` whose
columns are (right, down, forward, origin) in OpenCV convention; intrinsics are 3x3 and
normalised by the image size. A generator's camera conditioning ``c`` is 25 numbers:
cam2world flattened row-major (16) followed by intrinsics flattened row-major (9).

Random numbers: the official samplers always draw two ``(batch_size, 1)`` tensors
(``randn`` or ``rand``) from torch's *global* RNG, even when both standard deviations are
zero. By default (``generator=None``) these samplers do the same, so a script that mixes
camera sampling with other global-RNG draws reproduces the official sequence. Pass a
``torch.Generator`` to draw from it instead and leave the global RNG untouched.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch

__all__ = [
    "normalize_vecs",
    "create_cam2world_matrix",
    "FOV_to_intrinsics",
    "LookAtPoseSampler",
    "GaussianCameraPoseSampler",
    "UniformCameraPoseSampler",
    "camera_params",
]

Device = Union[str, torch.device]
Vec3 = Union[torch.Tensor, Sequence[float]]


def normalize_vecs(vectors: torch.Tensor) -> torch.Tensor:
    """Divide vectors by their L2 norm along the last dimension (no epsilon, like EG3D)."""
    return vectors / torch.norm(vectors, dim=-1, keepdim=True)


def create_cam2world_matrix(forward_vector: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
    """Build ``[N,4,4]`` cam2world matrices from viewing directions and camera positions.

    Both inputs are ``[N,3]``. Assumes world y is up and no roll. Columns: right =
    -normalize(y x fwd), second = normalize(fwd x right) (image-down, OpenCV), fwd, origin.
    """
    forward = normalize_vecs(forward_vector)
    world_up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float32, device=origin.device)
    world_up = world_up.expand_as(forward)
    right = -normalize_vecs(torch.cross(world_up, forward, dim=-1))
    up = normalize_vecs(torch.cross(forward, right, dim=-1))

    eye = torch.eye(4, device=origin.device).unsqueeze(0).repeat(forward.shape[0], 1, 1)
    rotation, translation = eye, eye.clone()
    rotation[:, :3, :3] = torch.stack((right, up, forward), dim=-1)
    translation[:, :3, 3] = origin
    # The product only copies entries, but composing it like EG3D keeps even signed zeros equal.
    return translation @ rotation


def FOV_to_intrinsics(fov_degrees: float, device: Device = "cpu") -> torch.Tensor:
    """Normalised 3x3 intrinsics for a vertical/horizontal field of view in degrees.

    Uses EG3D's literals 3.14159 and 1.414 (not pi and sqrt 2): 18.837 deg -> f = 4.263391.
    """
    focal = float(1 / (math.tan(fov_degrees * 3.14159 / 360) * 1.414))
    return torch.tensor([[focal, 0, 0.5], [0, focal, 0.5], [0, 0, 1]], device=device)


def _draw(kind: str, batch_size: int, device: Device, generator: Optional[torch.Generator]) -> torch.Tensor:
    draw = torch.randn if kind == "normal" else torch.rand
    return draw((batch_size, 1), device=device, generator=generator)


def _origins(h: torch.Tensor, v: torch.Tensor, radius: float, batch_size: int, device: Device) -> torch.Tensor:
    """Camera positions on a sphere of ``radius`` from yaw ``h`` and pitch ``v`` ([N,1] each)."""
    v = torch.clamp(v, 1e-5, math.pi - 1e-5)
    theta = h
    phi = torch.arccos(1 - 2 * (v / math.pi))
    origins = torch.zeros((batch_size, 3), device=device)
    origins[:, 0:1] = radius * torch.sin(phi) * torch.cos(math.pi - theta)
    origins[:, 2:3] = radius * torch.sin(phi) * torch.sin(math.pi - theta)
    origins[:, 1:2] = radius * torch.cos(phi)
    return origins


def _as_point(point: Vec3, device: Device) -> torch.Tensor:
    """A float32 3-vector (EG3D would promote int tensors and fail on float64 ones)."""
    if isinstance(point, torch.Tensor):
        return point.to(device=device, dtype=torch.float32)
    return torch.tensor([float(x) for x in point], dtype=torch.float32, device=device)


class GaussianCameraPoseSampler:
    """Poses looking at the origin, yaw/pitch drawn from N(mean, stddev) (std 0: fixed pose)."""

    @staticmethod
    def sample(
        horizontal_mean: float,
        vertical_mean: float,
        horizontal_stddev: float = 0,
        vertical_stddev: float = 0,
        radius: float = 1,
        batch_size: int = 1,
        device: Device = "cpu",
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """Return ``[batch_size,4,4]`` cam2world matrices (see module doc for the RNG)."""
        h = _draw("normal", batch_size, device, generator) * horizontal_stddev + horizontal_mean
        v = _draw("normal", batch_size, device, generator) * vertical_stddev + vertical_mean
        origins = _origins(h, v, radius, batch_size, device)
        return create_cam2world_matrix(normalize_vecs(-origins), origins)


class LookAtPoseSampler:
    """Like :class:`GaussianCameraPoseSampler` but looking at ``lookat_position`` (a 3-vector).

    ``LookAtPoseSampler.sample(pi/2, pi/2, [0, 0, 0], radius=1)`` is a camera at (0, 0, 1)
    looking at the origin.
    """

    @staticmethod
    def sample(
        horizontal_mean: float,
        vertical_mean: float,
        lookat_position: Vec3,
        horizontal_stddev: float = 0,
        vertical_stddev: float = 0,
        radius: float = 1,
        batch_size: int = 1,
        device: Device = "cpu",
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """Return ``[batch_size,4,4]`` cam2world matrices (see module doc for the RNG)."""
        h = _draw("normal", batch_size, device, generator) * horizontal_stddev + horizontal_mean
        v = _draw("normal", batch_size, device, generator) * vertical_stddev + vertical_mean
        origins = _origins(h, v, radius, batch_size, device)
        forward = normalize_vecs(_as_point(lookat_position, device) - origins)
        return create_cam2world_matrix(forward, origins)


class UniformCameraPoseSampler:
    """Poses looking at the origin, yaw/pitch uniform in ``mean +- stddev``."""

    @staticmethod
    def sample(
        horizontal_mean: float,
        vertical_mean: float,
        horizontal_stddev: float = 0,
        vertical_stddev: float = 0,
        radius: float = 1,
        batch_size: int = 1,
        device: Device = "cpu",
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """Return ``[batch_size,4,4]`` cam2world matrices (see module doc for the RNG)."""
        h = (_draw("uniform", batch_size, device, generator) * 2 - 1) * horizontal_stddev + horizontal_mean
        v = (_draw("uniform", batch_size, device, generator) * 2 - 1) * vertical_stddev + vertical_mean
        origins = _origins(h, v, radius, batch_size, device)
        return create_cam2world_matrix(normalize_vecs(-origins), origins)


def camera_params(cam2world: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Concatenate ``[N,4,4]`` cam2world and ``[3,3]``/``[N,3,3]`` intrinsics into ``[N,25]``.

    Shared ``[3,3]`` intrinsics are repeated for every camera. Raises ``ValueError`` on
    shape, batch or device mismatches.
    """
    if not isinstance(cam2world, torch.Tensor) or cam2world.ndim != 3 or cam2world.shape[1:] != (4, 4):
        raise ValueError(f"cam2world must be a [N,4,4] tensor, got shape {_shape(cam2world)}")
    if not isinstance(intrinsics, torch.Tensor) or intrinsics.ndim not in (2, 3) or intrinsics.shape[-2:] != (3, 3):
        raise ValueError(f"intrinsics must be a [3,3] or [N,3,3] tensor, got shape {_shape(intrinsics)}")
    n = cam2world.shape[0]
    if intrinsics.ndim == 3 and intrinsics.shape[0] != n:
        raise ValueError(f"batch mismatch: {n} cam2world matrices but {intrinsics.shape[0]} intrinsics")
    if intrinsics.device != cam2world.device:
        raise ValueError(f"device mismatch: cam2world on {cam2world.device}, intrinsics on {intrinsics.device}")
    flat_k = intrinsics.reshape(-1, 9).expand(n, 9)
    return torch.cat([cam2world.reshape(n, 16), flat_k], dim=1)


def _shape(x: object) -> str:
    return str(list(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__
