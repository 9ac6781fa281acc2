"""The toy world's identity networks: a small CNN that maps a head image to a unit embedding.

Two instances with different widths and seeds play ArcFace (inside :class:`guide.identity.IDLoss`,
which feeds ``idloss_preprocess`` crops of ``input_size``²) and CurricularFace (inside the ID
metric, which feeds 112² aligned crops); any input size is resized to ``input_size`` first.
Inputs are images in [-1, 1], as both wrappers produce.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EMBEDDING_DIM = 128
INPUT_SIZE = 64


class ToyFaceNet(nn.Module):
    """``[N,3,H,W]`` in [-1,1] -> unit embeddings ``[N,128]``: four stride-2 conv blocks, a linear head."""

    def __init__(self, width: int = 16, input_size: int = INPUT_SIZE, dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.input_size = input_size
        self.width = width
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * 16, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        h = F.adaptive_avg_pool2d(self.features(x), 4).flatten(1)
        return F.normalize(self.head(h), dim=1)
