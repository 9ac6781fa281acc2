"""Steadier five-point landmarks: MTCNN on several slightly moved copies of a crop, then the median.

One MTCNN pass places a landmark with an error of about 1.5-3.5 px (standard deviation, measured on
the 512x512 aligned test photos across small shifts, scales, rotations and mirroring): its output
network regresses the points relative to a box whose position itself jitters. :func:`steady_landmarks`
warps the photo into the crop frame under :data:`AUGMENTATIONS` (16 fixed, deterministic
perturbations: mirror or not x eight small rotation / scale / shift combinations), detects in each,
maps the points back into the photo and takes the per-coordinate median -- about 4x less noise.

The crop frame must already be roughly right (the face near the template position at about the
template scale); :func:`guide.preprocess.align.align_photo` gets there from a first detection on the
whole photo. The same procedure, on the aligned photos themselves, measured the crop template
(:mod:`guide.preprocess.calibrate`), so template and runtime landmarks share their biases.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from guide.preprocess.geometry import apply_affine, compose, invert_affine, similarity, warp

__all__ = ["AUGMENTATIONS", "MIRROR_ORDER", "steady_landmarks"]

Detector = Callable[[Image.Image], list]

# (rotation deg, scale, shift x px, shift y px) about the crop centre; each is used plain and mirrored
_MOVES: Tuple[Tuple[float, float, float, float], ...] = (
    (0.0, 1.00, 0.0, 0.0),
    (3.0, 1.04, 5.0, -3.0),
    (-3.0, 0.96, -5.0, 3.0),
    (1.5, 0.93, 3.0, 6.0),
    (-1.5, 1.07, -3.0, -6.0),
    (2.5, 1.00, -6.0, 2.0),
    (-2.5, 1.02, 6.0, -2.0),
    (0.0, 0.98, 2.0, -5.0),
)
AUGMENTATIONS: Tuple[Tuple[float, float, float, float, bool], ...] = tuple(
    move + (mirror,) for move in _MOVES for mirror in (False, True)
)
# landmark order of a mirrored face: the eyes and the mouth corners swap
MIRROR_ORDER = (1, 0, 2, 4, 3)


def _augmentation_matrix(
    rotation_deg: float, scale: float, dx: float, dy: float, mirror: bool, size: int
) -> np.ndarray:
    centre = ((size - 1) / 2, (size - 1) / 2)
    move = similarity(scale, math.radians(rotation_deg), centre, (centre[0] + dx, centre[1] + dy))
    if mirror:
        move = compose(np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]), move)
    return move


def steady_landmarks(
    image: Image.Image,
    matrix: np.ndarray,
    detect: Detector,
    expected: np.ndarray,
    *,
    size: int = 512,
    augmentations: Sequence[Tuple[float, float, float, float, bool]] = AUGMENTATIONS,
) -> Tuple[Optional[np.ndarray], int]:
    """Median landmarks ``[5, 2]`` in *photo* coordinates and how many views found the face.

    ``matrix``: the current photo -> crop matrix; ``detect``: an RGB image -> faces callable (a
    :class:`~guide.identity.detect.FaceDetector`); ``expected``: ``[5, 2]`` where the landmarks
    should lie in the crop (the template), used to pick the right face in each view.
    Returns ``(None, 0)`` if no view found a face.
    """
    found: List[np.ndarray] = []
    expected = np.asarray(expected, dtype=np.float64)
    for *move, mirror in augmentations:
        aug = _augmentation_matrix(*move, mirror, size)
        to_view = compose(aug, matrix)
        faces = detect(warp(image, to_view, size))
        if not faces:
            continue
        target = apply_affine(aug, expected).mean(axis=0)
        face = min(faces, key=lambda f: float(np.hypot(*(np.asarray(f.landmarks).mean(axis=0) - target))))
        points = np.asarray(face.landmarks, dtype=np.float64)
        if mirror:
            points = points[list(MIRROR_ORDER)]
        found.append(apply_affine(invert_affine(to_view), points))
    if not found:
        return None, 0
    return np.median(np.stack(found), axis=0), len(found)
