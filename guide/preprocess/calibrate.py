"""Re-derive the crop template from photos that are already in the target framing.

``calibrate([aligned_1, aligned_2, aligned_3], detector)`` measures steady landmarks on each photo
(the same multi-view procedure used at run time, with the identity as photo -> crop matrix) and
returns :func:`guide.preprocess.template.derive_template` of them. The constants in
:mod:`guide.preprocess.template` are its result on ``../shared/faces/aligned_{1,2,3}.jpg``.
"""
from __future__ import annotations

from typing import Callable, List, Sequence

import numpy as np
from PIL import Image

from guide.identity.detect import NoFaceError
from guide.preprocess.landmarks import steady_landmarks
from guide.preprocess.template import CropTemplate, derive_template

__all__ = ["aligned_landmarks", "calibrate"]

_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def aligned_landmarks(image: Image.Image, detect: Callable, name: str = "image") -> np.ndarray:
    """Steady landmarks ``[5, 2]`` of the most confident face of an already aligned square photo."""
    faces = detect(image)
    if not faces:
        raise NoFaceError(f"no face found in {name}")
    first = max(faces, key=lambda f: f.probability)
    points, _ = steady_landmarks(image, _IDENTITY, detect, np.asarray(first.landmarks), size=image.size[0])
    if points is None:
        raise NoFaceError(f"no face found in the views of {name}")
    return points


def calibrate(images: Sequence[Image.Image], detect: Callable, **template_options) -> CropTemplate:
    """A :class:`CropTemplate` measured on aligned square RGB photos (all of the target size)."""
    sizes = {image.size for image in images}
    if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
        raise ValueError(f"aligned photos must be square and of one size, got {sorted(sizes)}")
    sets: List[np.ndarray] = [aligned_landmarks(image, detect, f"photo {i}") for i, image in enumerate(images)]
    return derive_template(sets, size=next(iter(sizes))[0], **template_options)
