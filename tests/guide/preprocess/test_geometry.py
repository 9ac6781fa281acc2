"""Matrices and the photo -> crop warp (integer pixel centres, antialiased shrinking)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from guide.preprocess.geometry import (
    apply_affine,
    compose,
    invert_affine,
    matrix_angle,
    matrix_scale,
    similarity,
    warp,
)


def _centroid(image: Image.Image):
    a = np.asarray(image.convert("L"), np.float64)
    ys, xs = np.nonzero(a > 0)
    w = a[ys, xs]
    return np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])


def test_similarity_compose_invert():
    m = similarity(2.0, math.radians(30), (10.0, 20.0), (100.0, 50.0))
    np.testing.assert_allclose(apply_affine(m, [[10.0, 20.0]]), [[100.0, 50.0]])
    assert matrix_scale(m) == pytest.approx(2.0) and matrix_angle(m) == pytest.approx(math.radians(30))
    np.testing.assert_allclose(compose(invert_affine(m), m), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


@pytest.mark.parametrize("scale", [2.0, 0.9, 0.3, 0.12])
def test_warp_puts_a_point_where_the_matrix_says(scale):
    size = 600
    photo = np.zeros((size, size, 3), np.uint8)
    photo[301:305, 200:204] = 255  # a 4x4 block centred on (201.5, 302.5)
    matrix = similarity(scale, math.radians(10), (201.5, 302.5), (40.5, 60.5))
    crop = warp(Image.fromarray(photo), matrix, 128)
    assert crop.size == (128, 128) and crop.mode == "RGB"
    np.testing.assert_allclose(_centroid(crop), [40.5, 60.5], atol=0.35)


def test_warp_fills_outside_by_mirroring_or_black():
    photo = np.zeros((50, 50, 3), np.uint8)
    photo[:, :10] = (250, 0, 0)  # red left edge
    photo[:, 10:] = (0, 0, 250)
    move = similarity(1.0, 0.0, (0, 0), (100, 100))  # photo pixel (0, 0) -> crop (100, 100)
    mirrored = warp(Image.fromarray(photo), move, 160)
    assert mirrored.getpixel((95, 120)) == (250, 0, 0)  # 5 px left of the photo: mirrored red edge
    assert mirrored.getpixel((120, 120)) == (0, 0, 250) and mirrored.getpixel((60, 120)) == (0, 0, 250)
    black = warp(Image.fromarray(photo), move, 160, fill="black")
    assert black.getpixel((95, 120)) == (0, 0, 0) and black.getpixel((120, 120)) == (0, 0, 250)
    np.testing.assert_array_equal(np.asarray(mirrored)[100:150, 100:150], np.asarray(black)[100:150, 100:150])
    with pytest.raises(ValueError):
        warp(Image.fromarray(photo), move, 16, fill="blur")
