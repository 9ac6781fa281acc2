"""GUIDE's identity loss: ArcFace IR-SE50 cosine distance between generator images.

``IDLoss(y_hat, y) = (1/N) * sum_i (1 - <f(P(y_hat_i)), f(P(y_i))>)``, with ``f`` the backbone
(unit-norm output) and ``<.,.>`` a plain dot product. The target features are detached, so
gradients flow only into ``y_hat``. Values lie in [0, 2]; identical images give 0 (up to rounding,
which can make it a tiny negative number such as -1.2e-7, as upstream).

Preprocessing ``P`` (:func:`idloss_preprocess`), exactly as upstream (``arcface.py``):

1. resize to 256x256 with ``F.interpolate(mode="bilinear")``, torch defaults
   (``align_corners=False``, no antialiasing) -- for 512 inputs this is a 2x2 box average;
2. crop rows 35..222 and columns 32..219 (188x188). The window is *not* centred
   (512-px coordinates: 70 px top, 66 bottom, 64 left, 72 right); it is tuned to EG3D's
   FFHQ framing, so it is kept as is;
3. ``adaptive_avg_pool2d`` to 112x112 (2- or 3-pixel windows that may overlap by one pixel);
4. no further normalisation: generator images in [-1, 1] go straight into the network.

Eval-mode pinning: upstream switches the IR-SE50 to eval once and never registers it under a
trained module. Here :class:`IDLoss` overrides ``train()`` so the backbone stays in eval mode
(running BN statistics, dropout 0.6 off) even when the loss is a submodule of something that
gets ``.train()``; its parameters are frozen (``requires_grad=False``).

Numerics: on CPU the loss matches the reference to ~1e-7. On CUDA, PyTorch's default
``torch.backends.cudnn.allow_tf32 = True`` runs the convolutions in TF32 (as upstream did on its
GPUs): measured on an H200, embeddings move by ~1e-4, the loss by ~1e-5 and the input gradient
by ~0.8% relative versus CPU; with TF32 disabled by the caller, 2e-7 and 1e-6. This module never
changes those global flags.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from guide.identity.backbones import backbone_input_size

RESIZE = 256
CROP_ROWS: Tuple[int, int] = (35, 223)  # python slice bounds on the 256 image
CROP_COLS: Tuple[int, int] = (32, 220)


def idloss_preprocess(x: torch.Tensor, size: int = 112) -> torch.Tensor:
    """GUIDE's resize -> crop -> pool of ``[N,3,H,W]`` generator images to ``[N,3,size,size]``."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected [N, 3, H, W] images, got {tuple(x.shape)}")
    x = F.interpolate(x, size=(RESIZE, RESIZE), mode="bilinear")
    x = x[:, :, CROP_ROWS[0]:CROP_ROWS[1], CROP_COLS[0]:CROP_COLS[1]]
    return F.adaptive_avg_pool2d(x, (size, size))


class IDLoss(nn.Module):
    """Identity loss on generator images (``[N,3,H,W]`` in [-1, 1]) -> scalar, as GUIDE defines it.

    ``backbone`` is an identity network such as :func:`guide.identity.ir_se50` (with
    ``model_ir_se50.pth`` for real use); it is frozen and pinned to eval mode in place.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.input_size = backbone_input_size(backbone)

    def train(self, mode: bool = True) -> "IDLoss":
        """Switch this wrapper's mode; the backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unit embeddings ``[N, 512]`` of generator images (preprocessing included)."""
        return self.backbone(idloss_preprocess(x, self.input_size))

    def terms(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample ``1 - <f(P(y_hat_i)), f(P(y_i))>`` as ``[N]`` (gradient only into ``y_hat``)."""
        if y_hat.shape[0] != y.shape[0]:
            raise ValueError(f"batch sizes differ: {y_hat.shape[0]} vs {y.shape[0]}")
        with torch.no_grad():
            y_feats = self.embed(y)
        y_hat_feats = self.embed(y_hat)
        dots = [y_hat_feats[i].dot(y_feats[i]) for i in range(y_hat_feats.shape[0])]
        return 1 - torch.stack(dots)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean of :meth:`terms` (summed in order then divided by N, like upstream's loop)."""
        terms = self.terms(y_hat, y)
        loss = terms[0]
        for i in range(1, terms.shape[0]):
            loss = loss + terms[i]
        return loss / terms.shape[0]
