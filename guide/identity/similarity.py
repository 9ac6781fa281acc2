"""ID similarity between face photos (GUIDE's ``IDSimNet`` / ``evaluate_id.py`` metric).

``IDSim(a, b) = < g(T(A(a))), g(T(A(b))) >``: ``A`` detects the most confident face with MTCNN
(:mod:`guide.identity.detect`) and aligns it to the 112x112 template
(:func:`guide.identity.align_face`), ``T`` is ToTensor + Normalize(0.5, 0.5) (``u8/255`` then
``(v - 0.5) / 0.5``, RGB, CHW), ``g`` a unit-norm backbone -- CurricularFace IR-101
(:func:`guide.identity.ir101` with ``CurricularFace_Backbone.pth``) for the paper's numbers.
The result is a cosine similarity in [-1, 1], as float32.

Differences from upstream, by design: upstream embeds one image at a time on CUDA; here the
network runs batched on the backbone's device (CPU or GPU), which changes results only at
float32 rounding level. Landmarks come from facenet-pytorch's MTCNN rather than GUIDE's own
MTCNN port (see :mod:`guide.identity.detect`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch import nn

from guide.errors import GuideError
from guide.identity.align import align_face, as_rgb_uint8
from guide.identity.detect import FaceDetector, NoFaceError

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]


def load_rgb(image: ImageSource) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB from a path, PIL image or uint8 HWC array/tensor."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise GuideError(f"image {path} does not exist")
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    return as_rgb_uint8(image)


def crops_to_tensor(crops: Union[np.ndarray, Sequence[np.ndarray]]) -> torch.Tensor:
    """Aligned uint8 crops ``[N,112,112,3]`` -> float32 ``[N,3,112,112]`` via ToTensor + Normalize(0.5, 0.5)."""
    arr = np.ascontiguousarray(np.stack(list(crops)) if not isinstance(crops, np.ndarray) else crops)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected uint8 crops [N, H, W, 3], got {arr.dtype} {arr.shape}")
    x = torch.from_numpy(arr).permute(0, 3, 1, 2).to(torch.float32)
    return x.div(255).sub(0.5).div(0.5)


class IDSimilarity(nn.Module):
    """Identity similarity of face images, batched on the backbone's device.

    ``backbone``: unit-norm embedder on 112x112 crops (frozen and kept in eval mode here).
    ``detector``: a :class:`FaceDetector`; built lazily on the backbone's device if omitted.
    ``forward(a, b)`` returns the similarity as a 0-d float32 tensor, :meth:`similarity` a float,
    :meth:`pairs` a ``[N]`` tensor for two equally long image lists.
    """

    def __init__(
        self, backbone: nn.Module, *, detector: Optional[FaceDetector] = None, batch_size: int = 32
    ) -> None:
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.batch_size = int(batch_size)
        self._detector = detector

    def train(self, mode: bool = True) -> "IDSimilarity":
        """Switch this wrapper's mode; the backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    @property
    def device(self) -> torch.device:
        """Device of the backbone's parameters."""
        return next(self.backbone.parameters()).device

    @property
    def detector(self) -> FaceDetector:
        """The face detector (created on first use)."""
        if self._detector is None:
            self._detector = FaceDetector(self.device)
        return self._detector

    def align(self, image: ImageSource, name: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Detect the most confident face and align it: ``(crop [112,112,3] uint8, matrix [2,3])``.

        Raises :class:`NoFaceError` when the image has no face.
        """
        label = name or (str(image) if isinstance(image, (str, os.PathLike)) else "image")
        rgb = load_rgb(image)
        face = self.detector.best(rgb, label)
        return align_face(rgb, face.landmarks)

    @torch.no_grad()
    def embed_crops(self, crops: Union[np.ndarray, Sequence[np.ndarray]]) -> torch.Tensor:
        """Unit embeddings ``[N, 512]`` of aligned uint8 crops, computed in batches."""
        x = crops_to_tensor(crops)
        dtype = next(self.backbone.parameters()).dtype
        out = [
            self.backbone(x[i:i + self.batch_size].to(self.device, dtype))
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return torch.cat(out).float()

    def embed(self, images: Sequence[ImageSource]) -> torch.Tensor:
        """Detect, align and embed images: ``[N, 512]`` (:class:`NoFaceError` on a faceless one)."""
        crops: List[np.ndarray] = []
        for i, image in enumerate(images):
            name = str(image) if isinstance(image, (str, os.PathLike)) else f"image #{i}"
            crops.append(self.align(image, name)[0])
        return self.embed_crops(crops)

    def pairs(self, images_a: Sequence[ImageSource], images_b: Sequence[ImageSource]) -> torch.Tensor:
        """Similarity of ``images_a[i]`` and ``images_b[i]`` for every i, float32 ``[N]``."""
        if len(images_a) != len(images_b):
            raise ValueError(f"image lists differ in length: {len(images_a)} vs {len(images_b)}")
        emb = self.embed(list(images_a) + list(images_b))
        n = len(images_a)
        return (emb[:n] * emb[n:]).sum(dim=1).float()

    def forward(self, image_a: ImageSource, image_b: ImageSource) -> torch.Tensor:
        """Similarity of two images as a 0-d float32 tensor."""
        return self.pairs([image_a], [image_b])[0]

    def similarity(self, image_a: ImageSource, image_b: ImageSource) -> float:
        """Similarity of two images as a Python float."""
        return float(self.forward(image_a, image_b))


__all__ = ["IDSimilarity", "NoFaceError", "crops_to_tensor", "load_rgb"]
