"""Head pose from five landmarks: conventions against EG3D's cameras, accuracy on synthetic rotations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from guide.cameras import FOV_DEGREES, pose_params
from guide.preprocess.pose import (
    HeadPose,
    camera_basis,
    eg3d_pitch,
    elevation_from_pitch,
    fit_pose,
    pos_fit,
    pose_camera,
    project,
)
from guide.preprocess.template import FACE_MODEL


@pytest.mark.parametrize("yaw_deg,elev_deg", [(0, 0), (20, 0), (-30, 10), (10, -15)])
def test_basis_and_pitch_match_eg3d_look_at_camera(yaw_deg, elev_deg):
    yaw, elev = math.radians(yaw_deg), math.radians(elev_deg)
    cam2world = pose_params(yaw, eg3d_pitch(elev))[0, :16].reshape(4, 4).double().numpy()
    right, down = camera_basis(yaw, elev)
    np.testing.assert_allclose(cam2world[:3, 0], right, atol=1e-5)
    np.testing.assert_allclose(cam2world[:3, 1], down, atol=1e-5)
    origin = cam2world[:3, 3] / np.linalg.norm(cam2world[:3, 3])
    assert math.asin(origin[1]) == pytest.approx(elev, abs=1e-5)
    assert math.atan2(origin[0], origin[2]) == pytest.approx(yaw, abs=1e-5)
    assert elevation_from_pitch(eg3d_pitch(elev)) == pytest.approx(elev)


def test_sign_conventions():
    """Camera to the image's right (yaw > 0): nose left of the eyes; camera above: nose lower."""
    front = project(HeadPose(100.0, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0), FACE_MODEL)
    turned = project(HeadPose(100.0, 0.0, math.radians(20), 0.0, (0.0, 0.0), 0.0), FACE_MODEL)
    above = project(HeadPose(100.0, 0.0, 0.0, math.radians(20), (0.0, 0.0), 0.0), FACE_MODEL)
    eye_mid = lambda p: (p[0] + p[1]) / 2  # noqa: E731
    assert turned[2, 0] - eye_mid(turned)[0] < front[2, 0] - eye_mid(front)[0] - 10
    assert above[2, 1] - eye_mid(above)[1] > front[2, 1] - eye_mid(front)[1] + 5
    assert front[0, 0] < front[1, 0] and front[3, 1] > front[0, 1]  # left eye left, mouth below (image y down)


def _synthetic_errors(noise_px: float, shape_sd: float, n: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(n):
        truth = HeadPose(136.0, math.radians(rng.uniform(-30, 30)), math.radians(rng.uniform(-45, 45)),
                         math.radians(rng.uniform(-25, 25)), (256.0, 240.0), 0.0)
        face = FACE_MODEL + rng.normal(0, shape_sd, FACE_MODEL.shape)
        fitted = fit_pose(project(truth, face) + rng.normal(0, noise_px, (5, 2)), FACE_MODEL)
        errors.append([fitted.yaw - truth.yaw, fitted.elevation - truth.elevation, fitted.roll - truth.roll])
    return np.degrees(np.abs(errors))


def test_exact_on_noise_free_projections():
    assert _synthetic_errors(0.0, 0.0, n=40).max() < 0.01


def test_accuracy_with_landmark_noise_and_face_shape_variation():
    """Measured (80 poses, yaw +-45, elevation +-25, roll +-30 deg, 136 px between the eyes):
    landmark noise sd 2 px -> yaw / elevation error mean ~1.5 / 1.3 deg, 90th percentile ~3.2 / 2.5;
    individual face shape sd 0.03 eye distances (~2 mm) -> mean ~2.6 deg, 90th percentile ~5 deg."""
    noisy = _synthetic_errors(2.0, 0.0)
    assert noisy[:, :2].mean() < 2.0 and np.percentile(noisy[:, :2], 90) < 4.0
    shaped = _synthetic_errors(0.0, 0.03)
    assert shaped[:, :2].mean() < 3.5 and np.percentile(shaped[:, :2], 90) < 7.0


def test_pose_camera_is_guides_camera():
    pose = HeadPose(136.0, 0.1, 0.2, -0.05, (0.0, 0.0), 0.0)
    camera = pose_camera(pose)
    assert camera.shape == (1, 25) and camera.dtype == torch.float32
    torch.testing.assert_close(camera, pose_params(0.2, eg3d_pitch(-0.05)))
    focal = 1 / (math.tan(FOV_DEGREES * 3.14159 / 360) * 1.414)
    assert camera[0, 16].item() == pytest.approx(focal, rel=1e-6)


def test_pos_fit_centre_moves_with_the_landmarks():
    pts = project(HeadPose(120.0, 0.2, 0.3, 0.1, (200.0, 220.0), 0.0), FACE_MODEL)
    _, centre, singular = pos_fit(pts, FACE_MODEL)
    angle, scale, shift = 0.4, 1.7, np.array([13.0, -7.0])
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    _, moved, singular2 = pos_fit(pts @ rot.T + shift, FACE_MODEL)
    np.testing.assert_allclose(moved, rot @ centre + shift, atol=1e-9)
    np.testing.assert_allclose(singular2, singular * scale, rtol=1e-9)


def test_degenerate_landmarks_are_refused():
    with pytest.raises(ValueError):
        fit_pose(np.zeros((5, 2)), FACE_MODEL)
