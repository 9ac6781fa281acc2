"""Any photo -> the aligned 512x512 face crop, its landmarks, crop matrix and EG3D camera.

:func:`align_photo` runs, in order:

1. :func:`guide.imageio.load_image` (first frame, EXIF orientation, any colour mode -> RGB, size
   limits; one-line errors for bad files);
2. MTCNN on the whole photo (on a copy at most :data:`DETECT_MAX_SIDE` px long, so that huge photos
   stay fast); faces are ranked most prominent first -- confident ones (probability >= 0.9) before
   doubtful ones, larger boxes first -- and ``face_index`` picks one (default 0);
3. the crop matrix from those five landmarks (:func:`guide.preprocess.template.crop_matrix`), then
   ``refine_steps`` rounds of: steady landmarks from 16 views of the current crop
   (:func:`guide.preprocess.landmarks.steady_landmarks`), averaged with the earlier rounds' ->
   new matrix. Detecting again in the nearly aligned crop removes what one detection on a tilted,
   small or large face gets wrong (a single MTCNN pass on wild_1 misses by 5 px, the refined
   landmarks by about 1 px);
4. the warp (:func:`guide.preprocess.geometry.warp`) and the head pose / EG3D camera
   (:mod:`guide.preprocess.pose`) from the refined landmarks.

Accuracy on ``../shared/faces/wild_{1,2}.jpg`` (aligned photos rotated, scaled and moved onto a
larger canvas): see :mod:`guide.preprocess`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from guide.errors import GuideError
from guide.identity.detect import Face, NoFaceError
from guide.imageio import DEFAULT_MAX_PIXELS, ImageSource, load_image
from guide.preprocess.geometry import apply_affine, invert_affine, matrix_scale, warp
from guide.preprocess.landmarks import steady_landmarks
from guide.preprocess.pose import HeadPose, fit_pose, pose_camera
from guide.preprocess.template import DEFAULT_TEMPLATE, CropTemplate, crop_matrix

__all__ = [
    "AlignedPhoto",
    "DETECT_MAX_SIDE",
    "FaceIndexError",
    "FaceTooSmallError",
    "MIN_EYE_DISTANCE",
    "align_photo",
    "rank_faces",
]

DETECT_MAX_SIDE = 1600
MIN_EYE_DISTANCE = 16.0  # photo pixels between the eyes below which a face is refused
SOFT_UPSCALE = 2.5  # enlargement above which the crop is flagged as soft
CONFIDENT = 0.9


class FaceIndexError(GuideError):
    """``face_index`` names a face that was not found."""


class FaceTooSmallError(GuideError):
    """The chosen face is too small in the photo to make a usable crop."""


@dataclass
class AlignedPhoto:
    """The result of :func:`align_photo`.

    ``image``: aligned 512x512 RGB crop; ``landmarks``: refined ``[5, 2]`` landmarks in the photo;
    ``matrix``: 2x3 photo -> crop; ``camera``: ``[1, 25]`` EG3D camera of the photo's viewpoint;
    ``num_faces`` / ``face_index`` / ``probability``: what was detected and which face was used;
    ``notes``: warnings (first frame used, EXIF rotation, colour conversion, several faces, ...).
    """

    image: Image.Image
    landmarks: np.ndarray
    matrix: np.ndarray
    camera: torch.Tensor
    num_faces: int
    face_index: int
    probability: float
    notes: List[str]
    pose: HeadPose
    box: np.ndarray
    detected_landmarks: np.ndarray
    faces: List[Dict[str, Any]] = field(default_factory=list)
    source: str = "image"
    photo_size: Tuple[int, int] = (0, 0)
    views: int = 0

    def to_json(self) -> Dict[str, Any]:
        """Everything but the image, as JSON-ready values."""
        return {
            "source": self.source,
            "photo_size": list(self.photo_size),
            "crop_size": list(self.image.size),
            "num_faces": self.num_faces,
            "face_index": self.face_index,
            "probability": self.probability,
            "box": [float(v) for v in self.box],
            "faces": self.faces,
            "landmarks": np.asarray(self.landmarks, float).round(3).tolist(),
            "detected_landmarks": np.asarray(self.detected_landmarks, float).round(3).tolist(),
            "matrix": np.asarray(self.matrix, float).tolist(),
            "camera": [float(v) for v in self.camera.reshape(-1).tolist()],
            "pose": self.pose.degrees(),
            "views": self.views,
            "notes": list(self.notes),
        }


def rank_faces(faces: Sequence[Face]) -> List[Face]:
    """Most prominent first: confident faces (probability >= 0.9) before others, larger boxes first."""
    return sorted(faces, key=lambda f: (f.probability >= CONFIDENT, f.area, f.probability), reverse=True)


def _detect_whole(image: Image.Image, detect: Callable) -> List[Face]:
    """Faces of the whole photo, detected on a copy at most DETECT_MAX_SIDE px long, in photo pixels."""
    longest = max(image.size)
    if longest <= DETECT_MAX_SIDE:
        return list(detect(image))
    ratio = longest / DETECT_MAX_SIDE
    reduced = (max(1, round(image.size[0] / ratio)), max(1, round(image.size[1] / ratio)))
    small = image.resize(reduced, Image.Resampling.BILINEAR, reducing_gap=2.0)
    sx, sy = image.size[0] / small.size[0], image.size[1] / small.size[1]
    scale_pts = np.array([sx, sy])
    out = []
    for f in detect(small):
        pts = (np.asarray(f.landmarks, np.float64) + 0.5) * scale_pts - 0.5
        box = np.asarray(f.box, np.float64) * np.array([sx, sy, sx, sy])
        out.append(Face(box=box.astype(np.float32), probability=f.probability, landmarks=pts.astype(np.float32)))
    return out


def _outside_fraction(matrix: np.ndarray, photo_size: Tuple[int, int], size: int) -> float:
    """Fraction of the crop that falls outside the photo (sampled on a 64x64 grid)."""
    grid = (np.arange(64) + 0.5) * size / 64 - 0.5
    xs, ys = np.meshgrid(grid, grid)
    pts = apply_affine(invert_affine(matrix), np.stack([xs.ravel(), ys.ravel()], axis=1))
    w, h = photo_size
    inside = (pts[:, 0] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= h - 0.5)
    return float(1.0 - inside.mean())


def _face_summary(faces: Sequence[Face]) -> List[Dict[str, Any]]:
    return [
        {"index": i, "probability": round(float(f.probability), 6), "box": [round(float(v), 2) for v in f.box]}
        for i, f in enumerate(faces)
    ]


def align_photo(
    path_or_image: ImageSource,
    face_index: Optional[int] = None,
    *,
    detector: Optional[Callable] = None,
    device: Union[str, torch.device] = "cpu",
    template: CropTemplate = DEFAULT_TEMPLATE,
    refine_steps: int = 2,
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
) -> AlignedPhoto:
    """Detect, align and crop one face of a photo; see the module doc for the steps.

    ``face_index``: which face, in :func:`rank_faces` order (default: the most prominent).
    ``detector``: a :class:`~guide.identity.detect.FaceDetector` to reuse (built on ``device`` if
    omitted). Bad files, no face, a missing ``face_index`` or a too small face raise a one-line
    :class:`~guide.errors.GuideError`.
    """
    loaded = load_image(path_or_image, max_pixels=max_pixels)
    photo, name, notes = loaded.image, loaded.source, list(loaded.notes)
    if detector is None:
        from guide.identity.detect import FaceDetector

        detector = FaceDetector(device)
    faces = rank_faces(_detect_whole(photo, detector))
    if not faces:
        raise NoFaceError(f"no face found in {name}")
    index = 0 if face_index is None else int(face_index)
    if not 0 <= index < len(faces):
        raise FaceIndexError(
            f"face index {index} does not exist in {name}: found {len(faces)} face(s), indices 0-{len(faces) - 1}")
    face = faces[index]
    if len(faces) > 1:
        which = "the most prominent" if index == 0 else f"face {index}"
        notes.append(f"found {len(faces)} faces; used {which} (index {index}, probability {face.probability:.3f})")
    eye_distance = float(np.hypot(*(face.landmarks[1] - face.landmarks[0])))
    if eye_distance < MIN_EYE_DISTANCE:
        raise FaceTooSmallError(
            f"the face in {name} is too small for a usable crop: {eye_distance:.1f} px between the eyes, "
            f"need at least {MIN_EYE_DISTANCE:g}")

    try:
        return _align_face(photo, face, detector, template, refine_steps, notes, faces, index, name)
    except ValueError as exc:  # degenerate landmarks (e.g. a false detection): one line, not a traceback
        raise GuideError(f"could not align the face in {name}: {exc}") from None


def _align_face(photo, face, detector, template, refine_steps, notes, faces, index, name) -> AlignedPhoto:
    """Steps 3-4 of :func:`align_photo` for the chosen face."""
    size = template.size
    expected = template.landmarks
    matrix = crop_matrix(face.landmarks, template)
    landmarks, views, history = np.asarray(face.landmarks, np.float64), 0, []
    for _ in range(max(0, int(refine_steps))):
        steady, count = steady_landmarks(photo, matrix, detector, expected, size=size)
        if steady is None:
            notes.append("could not re-detect the face in the crop; used the first detection only")
            break
        history.append(steady)
        views += count
        landmarks = np.mean(history, axis=0)  # rounds see the face from slightly different crops: average them
        matrix = crop_matrix(landmarks, template)

    crop = warp(photo, matrix, size)
    pose = fit_pose(apply_affine(matrix, landmarks), template.model)
    enlarge = matrix_scale(matrix)
    if enlarge > SOFT_UPSCALE:
        notes.append(f"the face is small in the photo: the crop enlarges it {enlarge:.1f}x and will look soft")
    outside = _outside_fraction(matrix, photo.size, size)
    if outside > 0.005:
        notes.append(f"{outside:.0%} of the crop lies outside the photo; it is filled by mirroring the photo's edges")
    return AlignedPhoto(
        image=crop,
        landmarks=landmarks,
        matrix=matrix,
        camera=pose_camera(pose),
        num_faces=len(faces),
        face_index=index,
        probability=float(face.probability),
        notes=notes,
        pose=pose,
        box=np.asarray(face.box, np.float64),
        detected_landmarks=np.asarray(face.landmarks, np.float64),
        faces=_face_summary(faces),
        source=name,
        photo_size=photo.size,
        views=views,
    )
