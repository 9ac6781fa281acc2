"""Head pose from five landmarks, and the EG3D camera that sees the face from the photo's viewpoint.

Method: a generic 3-D five-point face (:data:`guide.preprocess.template.FACE_MODEL`: eye centres,
nose tip, mouth corners, in eye-distance units, x right, y up, z towards the viewer) is fitted to
the landmarks with a *scaled orthographic* camera: six unknowns -- scale, in-plane roll, camera
azimuth (yaw) and elevation, 2-D translation -- by nonlinear least squares
(``scipy.optimize.least_squares``, a few starting yaws, the best kept). Weak perspective is
accurate here because a face is shallow compared with its distance to the camera (EG3D's camera
sits 2.7 units from a head about 0.5 units deep, FOV 18.8 deg).

Angles follow EG3D's camera sphere (:mod:`eg3d.camera`, :mod:`guide.cameras`): ``yaw`` is the
camera's azimuth offset from the frontal pose, positive when the camera moves to the image's right
(the face then looks towards the image's left, its nose left of the eye-mouth midline);
``elevation`` is the camera's angle above the face's horizontal plane. EG3D's pitch parameter is
not an angle: ``LookAtPoseSampler`` puts the camera at height ``r cos(phi)`` with
``cos(phi) = -2 p / pi`` for a pitch offset ``p``, so :func:`eg3d_pitch` converts
``p = -(pi / 2) sin(elevation)``.

:func:`pos_fit` is the affine-camera least-squares fit that Deep3DFaceRecon (and hence EG3D's
in-the-wild preprocessing) calls POS; :mod:`guide.preprocess.template` uses it for the crop's
centre and scale.

Accuracy: see :mod:`guide.preprocess` (validated on synthetic rotations of the model).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple, Union

import numpy as np
import torch

__all__ = [
    "HeadPose",
    "camera_basis",
    "eg3d_pitch",
    "elevation_from_pitch",
    "fit_pose",
    "pos_fit",
    "pose_camera",
    "project",
]

_LIMIT = math.radians(85.0)
_STARTS = (0.0, math.radians(35.0), -math.radians(35.0))


@dataclass(frozen=True)
class HeadPose:
    """A weak-perspective camera pose of the face model: image = scale * R2(roll) * view(yaw, elevation) + t."""

    scale: float
    roll: float
    yaw: float
    elevation: float
    translation: Tuple[float, float]
    rms: float

    @property
    def pitch(self) -> float:
        """EG3D pitch offset (radians, ``LookAtPoseSampler`` convention) of :attr:`elevation`."""
        return eg3d_pitch(self.elevation)

    def degrees(self) -> dict:
        """yaw / elevation / roll in degrees and the EG3D pitch offset, for reports."""
        return {
            "yaw_deg": math.degrees(self.yaw),
            "elevation_deg": math.degrees(self.elevation),
            "roll_deg": math.degrees(self.roll),
            "eg3d_yaw": self.yaw,
            "eg3d_pitch": self.pitch,
            "fit_rms_px": self.rms,
        }


def eg3d_pitch(elevation: float) -> float:
    """EG3D pitch offset ``p`` that puts the camera ``elevation`` radians above the horizontal."""
    return -(math.pi / 2) * math.sin(elevation)


def elevation_from_pitch(pitch: float) -> float:
    """Inverse of :func:`eg3d_pitch`."""
    return math.asin(max(-1.0, min(1.0, -2.0 * pitch / math.pi)))


def camera_basis(yaw: float, elevation: float) -> Tuple[np.ndarray, np.ndarray]:
    """World (right, down) unit vectors of a roll-free camera at (yaw, elevation) looking at the origin."""
    forward = -np.array([math.sin(yaw) * math.cos(elevation), math.sin(elevation), math.cos(yaw) * math.cos(elevation)])
    right = -np.cross([0.0, 1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return right, down / np.linalg.norm(down)


def _project(params: np.ndarray, points: np.ndarray) -> np.ndarray:
    scale, roll, yaw, elevation, tx, ty = params
    right, down = camera_basis(yaw, elevation)
    uv = np.stack([points @ right, points @ down], axis=1)
    c, s = math.cos(roll), math.sin(roll)
    return scale * uv @ np.array([[c, -s], [s, c]]).T + np.array([tx, ty])


def project(pose: HeadPose, points) -> np.ndarray:
    """``[N, 2]`` image positions of 3-D model ``points`` ``[N, 3]`` under ``pose``."""
    params = np.array([pose.scale, pose.roll, pose.yaw, pose.elevation, *pose.translation])
    return _project(params, np.asarray(points, dtype=np.float64))


def fit_pose(landmarks, model: np.ndarray) -> HeadPose:
    """Least-squares weak-perspective pose of ``model`` ``[5, 3]`` that best explains ``landmarks`` ``[5, 2]``."""
    from scipy.optimize import least_squares

    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    model = np.asarray(model, dtype=np.float64)
    eyes = pts[1] - pts[0]
    scale0 = float(np.hypot(*eyes)) / max(float(np.hypot(*(model[1, :2] - model[0, :2]))), 1e-9)
    if not np.isfinite(pts).all() or scale0 < 1e-6:
        raise ValueError("landmarks do not define a face (eyes coincide or values are not finite)")
    roll0 = math.atan2(eyes[1], eyes[0])
    centre = pts.mean(axis=0) - scale0 * np.array([1.0, -1.0]) * model[:, :2].mean(axis=0)
    lower = [scale0 * 0.2, -math.pi, -_LIMIT, -_LIMIT, -np.inf, -np.inf]
    upper = [scale0 * 5.0, math.pi, _LIMIT, _LIMIT, np.inf, np.inf]
    best = None
    for yaw0 in _STARTS:
        start = np.array([scale0, roll0, yaw0, 0.0, centre[0], centre[1]])
        result = least_squares(lambda p: (_project(p, model) - pts).ravel(), start, bounds=(lower, upper))
        if best is None or result.cost < best.cost:
            best = result
    scale, roll, yaw, elevation, tx, ty = best.x
    rms = float(np.sqrt(np.mean(best.fun ** 2) * 2))
    roll = (roll + math.pi) % (2 * math.pi) - math.pi
    return HeadPose(float(scale), float(roll), float(yaw), float(elevation), (float(tx), float(ty)), rms)


def pos_fit(landmarks, model: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affine-camera fit ("POS"): ``(P [2, 3], t [2], singular values of P)`` with ``landmarks ~ model @ P.T + t``.

    ``t`` is where the model's origin projects; it is a fixed weighted mean of the landmarks, so it
    moves exactly with any 2-D similarity applied to them.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    model = np.asarray(model, dtype=np.float64)
    n = model.shape[0]
    design = np.zeros((2 * n, 8))
    design[0::2, 0:3] = model
    design[0::2, 3] = 1.0
    design[1::2, 4:7] = model
    design[1::2, 7] = 1.0
    k = np.linalg.lstsq(design, pts.reshape(-1), rcond=None)[0]
    linear = np.vstack([k[0:3], k[4:7]])
    return linear, np.array([k[3], k[7]]), np.linalg.svd(linear, compute_uv=False)


def pose_camera(pose: HeadPose, device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """``[1, 25]`` EG3D camera parameters (GUIDE's conventions, :func:`guide.cameras.pose_params`) for ``pose``."""
    from guide.cameras import pose_params

    return pose_params(pose.yaw, pose.pitch, device=device)
