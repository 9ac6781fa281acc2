"""2-D similarity transforms and the antialiased photo -> crop warp.

Matrices are 2x3 float64 ``M`` mapping a photo pixel to a crop pixel, ``[x', y'] = M @ [x, y, 1]``,
with pixel centres at integer coordinates (the convention of :mod:`guide.identity.align`).

:func:`warp` resamples with Pillow's bicubic affine transform. When the crop shrinks the photo by
more than 2x, the photo is first reduced by an integer factor with Pillow's box filter, so large
photos do not alias. (The 112x112 ArcFace crop keeps its own cv2-exact bilinear warp,
:func:`guide.identity.align.warp_affine`, because it must match upstream bit for bit; this one
makes the 512x512 generator crop and favours quality.) Pixels outside the photo are filled by
mirroring the photo at its edges (``fill="reflect"``, the default, as the FFHQ recipe pads) or black
(``fill="black"``, as EG3D's in-the-wild crop does).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
from PIL import Image

__all__ = [
    "apply_affine",
    "compose",
    "invert_affine",
    "matrix_angle",
    "matrix_scale",
    "similarity",
    "warp",
]


def similarity(scale: float, angle: float, src: Sequence[float], dst: Sequence[float]) -> np.ndarray:
    """2x3 matrix that rotates by ``angle`` (radians, image axes: +x right, +y down), scales by
    ``scale`` and maps point ``src`` onto ``dst``."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[c, -s], [s, c]])
    return np.hstack([linear, (np.asarray(dst, float) - linear @ np.asarray(src, float))[:, None]])


def _h(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(matrix, float), [0.0, 0.0, 1.0]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of ``outer(inner(p))``."""
    return (_h(outer) @ _h(inner))[:2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return np.linalg.inv(_h(matrix))[:2]


def apply_affine(matrix: np.ndarray, points) -> np.ndarray:
    """``[N, 2]`` points mapped by a 2x3 matrix."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def matrix_scale(matrix: np.ndarray) -> float:
    """Isotropic scale of a 2x3 matrix (square root of the determinant's magnitude)."""
    m = np.asarray(matrix, dtype=np.float64)
    return float(math.sqrt(abs(np.linalg.det(m[:, :2]))))


def matrix_angle(matrix: np.ndarray) -> float:
    """Rotation angle (radians) of a 2x3 similarity matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    return float(math.atan2(m[1, 0], m[0, 0]))


def _pillow_coefficients(matrix: np.ndarray) -> Tuple[float, ...]:
    """Pillow AFFINE data for a photo -> crop matrix: crop pixel *area* coordinates -> photo ones."""
    inv = invert_affine(matrix)
    linear = inv[:, :2]
    offset = inv[:, 2] - linear @ np.array([0.5, 0.5]) + 0.5  # integer centres <-> Pillow's half-pixel
    return (linear[0, 0], linear[0, 1], offset[0], linear[1, 0], linear[1, 1], offset[1])


def _reflect_pad(image: Image.Image, matrix: np.ndarray, size: int) -> Tuple[Image.Image, np.ndarray]:
    """Mirror-pad ``image`` so that the whole crop lies inside it; the matrix follows the padding."""
    edge = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    corners = apply_affine(invert_affine(matrix), edge)
    width, height = image.size
    low, high = corners.min(axis=0), corners.max(axis=0)
    if low.min() >= 0 and high[0] <= width - 1 and high[1] <= height - 1:
        return image, matrix
    margin = 3  # room for the bicubic kernel
    left, top = (max(0, int(math.ceil(-v)) + margin) for v in low)
    right = max(0, int(math.ceil(high[0] - (width - 1))) + margin)
    bottom = max(0, int(math.ceil(high[1] - (height - 1))) + margin)
    padded = np.pad(np.asarray(image), ((top, bottom), (left, right), (0, 0)), mode="symmetric")
    return Image.fromarray(padded), compose(matrix, np.array([[1.0, 0.0, -float(left)], [0.0, 1.0, -float(top)]]))


def warp(image: Image.Image, matrix: np.ndarray, size: int = 512, fill: str = "reflect") -> Image.Image:
    """The ``size`` x ``size`` RGB crop of ``image`` under the photo -> crop ``matrix``.

    ``fill``: ``"reflect"`` (mirror the photo at its edges) or ``"black"`` for crop pixels outside it.
    """
    if fill not in ("reflect", "black"):
        raise ValueError(f"fill must be 'reflect' or 'black', got {fill!r}")
    factor = int(math.floor(1.0 / max(matrix_scale(matrix), 1e-12)))
    if factor >= 2:
        # reduced pixel i covers photo pixels [f i, f i + f): its centre is f i + (f - 1) / 2
        image = image.reduce(factor)
        to_photo = np.array([[factor, 0.0, (factor - 1) / 2], [0.0, factor, (factor - 1) / 2]])
        matrix = compose(matrix, to_photo)
    if fill == "reflect":
        image, matrix = _reflect_pad(image.convert("RGB"), matrix, size)
    return image.transform(
        (size, size), Image.Transform.AFFINE, _pillow_coefficients(matrix), resample=Image.Resampling.BICUBIC
    )
