"""The 512x512 crop template: where a face sits in the framing that FFHQ-trained EG3D and GOAE expect.

Derivation (reproduced by :func:`guide.preprocess.calibrate.calibrate` and checked by the tests on
``../shared/faces/aligned_{1,2,3}.jpg``, three CelebA-HQ photos in exactly that framing):

1. Landmarks: on each aligned photo, :func:`~guide.preprocess.landmarks.steady_landmarks` (MTCNN on
   16 perturbed views, median). Their mean is :data:`TEMPLATE_LANDMARKS`.
2. A 3-D five-point face, :data:`FACE_MODEL` (eye-distance units, x right, y up, z to the viewer):
   x / y are the mean landmarks made left-right symmetric (eye midpoint at the origin); depths are
   anthropometric priors, not measured -- nose tip 0.40 eye distances in front of the eye centres,
   mouth corners 0.10 behind.
3. The crop is defined the way EG3D's in-the-wild preprocessing defines its crops (Deep3DFaceRecon's
   ``align_img``): an affine-camera ("POS") fit of the 3-D face gives a scale and the image position
   of one 3-D point; the crop scales the face to a fixed size and puts that point at a fixed pixel.
   The point is :data:`CROP_CENTRE_POINT`, 0.25 eye distances below the eyes and 0.30 behind them.
   Unlike EG3D, the in-plane roll is removed too (angle of the eye line, kept at the aligned photos'
   mean :data:`TEMPLATE_ROLL`), so a tilted photo gives an upright crop. :data:`TEMPLATE_SCALE`,
   :data:`TEMPLATE_CENTRE` and :data:`TEMPLATE_ROLL` are the means over the three aligned photos.

Why not a similarity fit to the mean landmarks? The aligned photos were not framed by a fit to
MTCNN's five points, so individual faces deviate from any mean template: a least-squares similarity
fit of each aligned photo's own landmarks to the mean moves it 4.0-6.3 px away from itself (mean
5.3 px; 7.9 px when the photo is left out of the mean) -- the nose and the mouth width vary most
between faces, and a turned face shifts its landmarks relative to the head. A similarity fit is
enough as a *transform* (the aligned framing is rotation + scale + shift of the photo), but not as
the *estimator*: which similarity to pick must come from features that are stable from face to
face. The POS centre / scale with the eye-line roll reproduces the three photos' own framing to
1.2-1.9 px (mean 1.55 px; 2.45-2.75 px, mean 2.6 px, leaving each photo out of the template). The
depth and height of :data:`CROP_CENTRE_POINT` were chosen on these photos, so the leave-one-out
figure is the honest one for unseen faces; three photos cannot pin the framing down further.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from guide.preprocess.geometry import similarity
from guide.preprocess.pose import pos_fit

__all__ = [
    "CROP_CENTRE_POINT",
    "CROP_SIZE",
    "CropTemplate",
    "DEFAULT_TEMPLATE",
    "FACE_MODEL",
    "MOUTH_DEPTH",
    "NOSE_DEPTH",
    "TEMPLATE_CENTRE",
    "TEMPLATE_LANDMARKS",
    "TEMPLATE_ROLL",
    "TEMPLATE_SCALE",
    "crop_matrix",
    "derive_template",
    "face_model",
    "similarity_crop_matrix",
]

CROP_SIZE = 512
NOSE_DEPTH = 0.40
MOUTH_DEPTH = -0.10
CROP_CENTRE_POINT = np.array([0.0, -0.25, -0.30])

# --- measured on ../shared/faces/aligned_{1,2,3}.jpg (see module doc; tests re-derive them) ----
TEMPLATE_LANDMARKS = np.array(
    [
        [177.8940, 201.6800],  # left eye (smaller x)
        [311.9774, 204.5881],  # right eye
        [232.3614, 280.2716],  # nose tip
        [180.5395, 341.7210],  # left mouth corner
        [310.1137, 343.6230],  # right mouth corner
    ]
)
TEMPLATE_ROLL = 0.021587  # radians (1.24 deg): mean eye-line angle of the aligned photos
TEMPLATE_SCALE = 136.0614  # crop pixels per eye-distance unit of FACE_MODEL (POS scale)
TEMPLATE_CENTRE = np.array([252.7826, 236.6628])  # crop pixel of CROP_CENTRE_POINT


def face_model(mean_landmarks, nose_depth: float = NOSE_DEPTH, mouth_depth: float = MOUTH_DEPTH) -> np.ndarray:
    """``[5, 3]`` symmetric 3-D face (eye-distance units, origin at the eye midpoint, y up) from frontal landmarks."""
    pts = np.asarray(mean_landmarks, dtype=np.float64)
    eye_mid = (pts[0] + pts[1]) / 2
    unit = float(np.hypot(*(pts[1] - pts[0])))
    q = (pts - eye_mid) / unit
    nose_y = q[2, 1]
    mouth_y = (q[3, 1] + q[4, 1]) / 2
    mouth_x = (q[4, 0] - q[3, 0]) / 2
    return np.array(
        [
            [-0.5, 0.0, 0.0],
            [0.5, 0.0, 0.0],
            [0.0, -nose_y, nose_depth],
            [-mouth_x, -mouth_y, mouth_depth],
            [mouth_x, -mouth_y, mouth_depth],
        ]
    )


@dataclass(frozen=True)
class CropTemplate:
    """Everything that fixes the crop: the 3-D face, its centre point and the target frame."""

    landmarks: np.ndarray
    roll: float
    scale: float
    centre: np.ndarray
    model: np.ndarray
    centre_point: np.ndarray = field(default_factory=lambda: CROP_CENTRE_POINT.copy())
    size: int = CROP_SIZE


def _frame(landmarks, model: np.ndarray, centre_point: np.ndarray):
    """(eye-line roll, POS scale, image position of ``centre_point``) of one landmark set."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eyes = pts[1] - pts[0]
    _, centre, singular = pos_fit(pts, model - centre_point)
    return math.atan2(eyes[1], eyes[0]), float(singular.mean()), centre


def crop_matrix(landmarks, template: "CropTemplate" = None) -> np.ndarray:
    """2x3 photo -> crop matrix for five landmarks ``[5, 2]`` (x, y; facenet-pytorch order)."""
    template = template or DEFAULT_TEMPLATE
    roll, scale, centre = _frame(landmarks, template.model, template.centre_point)
    if not np.isfinite([roll, scale, *centre]).all() or scale <= 1e-9:
        raise ValueError("landmarks do not define a face frame")
    return similarity(template.scale / scale, template.roll - roll, centre, template.centre)


def similarity_crop_matrix(landmarks, template: "CropTemplate" = None) -> np.ndarray:
    """The plain alternative: least-squares similarity of the landmarks onto :attr:`CropTemplate.landmarks`.

    Uses :func:`guide.identity.align.similarity_matrix` (non-reflective). About 4-5 px less
    faithful to the aligned framing than :func:`crop_matrix` (see module doc); kept for comparison.
    """
    from guide.identity.align import similarity_matrix

    template = template or DEFAULT_TEMPLATE
    return similarity_matrix(landmarks, template.landmarks.astype(np.float32), reflective=False)


def derive_template(
    landmark_sets: Sequence[np.ndarray],
    *,
    size: int = CROP_SIZE,
    centre_point: np.ndarray = CROP_CENTRE_POINT,
    nose_depth: float = NOSE_DEPTH,
    mouth_depth: float = MOUTH_DEPTH,
) -> CropTemplate:
    """The template implied by landmarks ``[5, 2]`` measured on photos already in the target framing."""
    sets = [np.asarray(s, dtype=np.float64).reshape(5, 2) for s in landmark_sets]
    if not sets:
        raise ValueError("need at least one aligned photo's landmarks")
    mean = np.mean(sets, axis=0)
    model = face_model(mean, nose_depth, mouth_depth)
    frames = [_frame(s, model, np.asarray(centre_point, float)) for s in sets]
    return CropTemplate(
        landmarks=mean,
        roll=float(np.mean([f[0] for f in frames])),
        scale=float(np.mean([f[1] for f in frames])),
        centre=np.mean([f[2] for f in frames], axis=0),
        model=model,
        centre_point=np.asarray(centre_point, dtype=np.float64).copy(),
        size=size,
    )


FACE_MODEL = face_model(TEMPLATE_LANDMARKS)
DEFAULT_TEMPLATE = CropTemplate(
    landmarks=TEMPLATE_LANDMARKS,
    roll=TEMPLATE_ROLL,
    scale=TEMPLATE_SCALE,
    centre=TEMPLATE_CENTRE,
    model=FACE_MODEL,
)
