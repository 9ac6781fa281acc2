"""Face detection with facenet-pytorch's MTCNN (its P/R/O-Net weights ship inside the package).

:func:`detect_faces` returns every face in an image as a :class:`Face` -- box, probability and the
five landmarks ``[5, 2]`` (x, y) in the order left eye, right eye, nose tip, left mouth corner,
right mouth corner ("left" = smaller x in the image) -- sorted most prominent first. An image
without a face gives an empty list; callers that need one raise :class:`NoFaceError`.

Detector settings default to facenet-pytorch's (min face 20 px, thresholds 0.6/0.7/0.7, pyramid
factor 0.709), the settings behind the reference landmarks of photo preprocessing. GUIDE's
evaluation (``id_sim.py``) uses its own MTCNN port with much lower thresholds, 0.15/0.25/0.35, and
pyramid factor 0.707 (min face 20 px, NMS 0.7 at every stage): :data:`REFERENCE_EVAL_SETTINGS`,
which the ID metrics use (:mod:`guide.evaluate.identity`), so faces the default settings would
miss on a render are found as the reference finds them. What remains different from that port:
the P/R/O-Net weights are facenet-pytorch's (the port's are not published with GUIDE; both
descend from the original MTCNN release), the image pyramid and the box crops are resized with
torch's area interpolation instead of PIL's bilinear resize, and facenet-pytorch shifts the
landmarks by -1 pixel when it maps them out of their box while the port does not. Landmarks (and
which borderline faces pass) may therefore differ slightly from upstream's on the same image.

MTCNN on CUDA and on CPU give landmarks that differ by ~0.01 px (measured on an H200), enough to
flip aligned-crop pixels by a level or two and ID similarities by ~1e-5.

Reuse: build one :class:`FaceDetector` and call it for many images (network construction is the
expensive part); :func:`detect_faces` is a one-shot convenience. Images are RGB: PIL images,
``[H, W, 3]`` uint8 arrays or tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch

from guide.errors import GuideError
from guide.identity.align import ImageLike, as_rgb_uint8

DeviceLike = Union[str, torch.device]
ORDERS = ("probability", "area")
# GUIDE's own MTCNN port as its evaluation (id_sim.py) runs it; facenet-pytorch's defaults otherwise
REFERENCE_EVAL_SETTINGS = {"thresholds": (0.15, 0.25, 0.35), "factor": 0.707, "min_face_size": 20}
DETECTOR_SETTINGS = {"reference": REFERENCE_EVAL_SETTINGS,
                     "facenet": {"thresholds": (0.6, 0.7, 0.7), "factor": 0.709, "min_face_size": 20}}


class NoFaceError(GuideError):
    """An image in which the detector found no face."""


@dataclass(frozen=True)
class Face:
    """One detection: ``box`` [4] (x1, y1, x2, y2), ``probability``, ``landmarks`` [5, 2] (x, y)."""

    box: np.ndarray
    probability: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        """Box area in pixels."""
        return float(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0))


class FaceDetector:
    """A reusable MTCNN face detector on ``device``.

    ``order``: ``"probability"`` (most confident first; what GUIDE's aligner picks, the default)
    or ``"area"`` (largest box first). ``min_probability`` drops weaker detections.
    """

    def __init__(
        self,
        device: DeviceLike = "cpu",
        *,
        order: str = "probability",
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        min_probability: float = 0.0,
    ) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        from facenet_pytorch import MTCNN

        self.device = torch.device(device)
        self.order = order
        self.min_probability = float(min_probability)
        self.mtcnn = MTCNN(
            min_face_size=min_face_size,
            thresholds=list(thresholds),
            factor=factor,
            select_largest=False,
            keep_all=True,
            device=self.device,
        )

    def __call__(self, image: ImageLike) -> List[Face]:
        """All faces in one RGB image, most prominent first (empty list if none)."""
        rgb = as_rgb_uint8(image)
        boxes, probs, points = self.mtcnn.detect(rgb, landmarks=True)
        if boxes is None:
            return []
        faces = [
            Face(
                box=np.asarray(b, dtype=np.float32),
                probability=float(p),
                landmarks=np.asarray(l, dtype=np.float32).reshape(5, 2),
            )
            for b, p, l in zip(boxes, probs, points)
            if float(p) >= self.min_probability
        ]
        key = (lambda f: f.probability) if self.order == "probability" else (lambda f: f.area)
        return sorted(faces, key=key, reverse=True)

    def best(self, image: ImageLike, name: str = "image") -> Face:
        """The most prominent face; :class:`NoFaceError` (naming ``name``) if there is none."""
        faces = self(image)
        if not faces:
            raise NoFaceError(f"no face found in {name}")
        return faces[0]


def detect_faces(image: ImageLike, device: DeviceLike = "cpu", *, order: str = "probability") -> List[Face]:
    """All faces in an RGB image (PIL / uint8 HWC array), most prominent first; see :class:`FaceDetector`."""
    return FaceDetector(device, order=order)(image)


__all__: Tuple[str, ...] = ("DETECTOR_SETTINGS", "Face", "FaceDetector", "NoFaceError", "REFERENCE_EVAL_SETTINGS",
                            "detect_faces")
