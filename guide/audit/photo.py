"""The photo an attacker holds: aligned as `guide preprocess` does, its camera, and its GOAE re-inversion."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from guide.config import CameraConfig
from guide.errors import GuideError


@dataclass
class Photo:
    """``image``: the aligned face crop, uint8 ``[H, W, 3]``; ``camera``: ``[1, 25]`` its estimated
    viewpoint; ``w_inverted``: its GOAE inversion ``[1, num_ws, w_dim]`` (None: no encoder);
    ``source`` / ``sha256``: the file it came from."""

    image: np.ndarray
    camera: torch.Tensor
    w_inverted: Optional[torch.Tensor] = None
    source: str = ""
    sha256: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    def tensor(self, size: int, device) -> torch.Tensor:
        """``[1, 3, size, size]`` in [-1, 1] (bilinear, antialiased resize when the sizes differ)."""
        from guide.imageio import uint8_to_tensor

        x = uint8_to_tensor(self.image, device=device)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                                antialias=True)
        return x

    def record(self) -> dict:
        """What audit.json says about the photo."""
        return {"source": self.source, "sha256": self.sha256, "crop_size": list(self.image.shape[:2]),
                "camera": [round(float(v), 6) for v in self.camera.reshape(-1).tolist()],
                "reinverted": self.w_inverted is not None, "notes": list(self.notes)}


def photo_of(config: dict, override: Optional[Path]) -> Optional[Path]:
    """The photo of an erasure: ``override``, else the photo named in its config.json (for a folder
    erasure, its erased photo; None when the erasure was made from a latent or a random seed). A
    named photo that is gone is an error."""
    if override is not None:
        if not Path(override).is_file():
            raise GuideError(f"photo not found: {override}")
        return Path(override)
    identity = config.get("identity") or {}
    kind = identity.get("kind")
    if kind not in ("photo", "folder"):
        return None
    path = Path(str(identity.get("value")))
    if kind == "folder":  # the reference's OOD protocol: photo `index` of the folder was erased
        from guide.erase import folder_photos

        photos = folder_photos(path) if path.is_dir() else []
        index = identity.get("index", 0)
        if not isinstance(index, int) or not 0 <= index < len(photos):
            raise GuideError(f"the erased photo {index} of folder {path} is gone (config.json names it); pass --photo")
        return photos[index]
    if not path.is_file():
        raise GuideError(f"the erased photo {path} is gone (config.json names it); pass --photo")
    return path


def load_photo(path: Path, camera: CameraConfig, w_avg: torch.Tensor, checkpoint_dir, device, models=None,
               aligned: bool = False) -> Photo:
    """Align ``path`` (MTCNN, as `guide preprocess`), estimate its camera with the erasure's camera
    settings, and re-invert it with GOAE (``models``: a :class:`guide.inversion.PhotoModels`).

    ``aligned``: the photo is already an aligned crop, as for an erasure made with ``--aligned``:
    it is fed to GOAE as it is (the erasure's own input), and its camera comes from the landmarks
    detected on the crop itself (frontal, with a note, when no face is found there)."""
    from guide import inversion
    from guide.io.hashing import sha256_file
    from guide.render import camera_for

    models = models if models is not None else inversion.PhotoModels()
    if aligned:
        image_pil, notes, (yaw, pitch) = _aligned_crop(path, models.detector(device))
    else:
        from guide.preprocess import align_photo

        found = align_photo(path, detector=models.detector(device), device=device)
        image_pil, notes, (yaw, pitch) = found.image, list(found.notes), (found.pose.yaw, found.pose.pitch)
    image = np.asarray(image_pil.convert("RGB"))
    c = camera_for(camera, yaw, pitch, device)
    w = inversion.invert(image_pil, models.encoder(checkpoint_dir, device), w_avg, device)
    return Photo(image, c, w, str(path), sha256_file(path), notes)


def _aligned_crop(path: Path, detector):
    """An already aligned crop as it is, its notes, and (yaw, pitch) fitted to the landmarks found
    on it (scaled to the crop template's size)."""
    from guide.imageio import load_image
    from guide.preprocess.align import _detect_whole, rank_faces
    from guide.preprocess.pose import fit_pose
    from guide.preprocess.template import DEFAULT_TEMPLATE

    loaded = load_image(path)
    image, notes = loaded.image, list(loaded.notes) + ["aligned crop (the erasure used --aligned): not re-aligned"]
    faces = rank_faces(_detect_whole(image, detector))
    if not faces:
        notes.append("no face detected on the aligned crop: frontal camera assumed")
        return image, notes, (0.0, 0.0)
    landmarks = np.asarray(faces[0].landmarks, np.float64) * (DEFAULT_TEMPLATE.size / image.width)
    pose = fit_pose(landmarks, DEFAULT_TEMPLATE.model)
    return image, notes, (pose.yaw, pose.pitch)
