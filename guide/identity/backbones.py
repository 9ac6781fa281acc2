"""Face-recognition backbones: the "IR" ResNets behind ArcFace IR-SE50 and CurricularFace IR-101.

Both take ``[N, 3, 112, 112]`` RGB images in roughly [-1, 1] and return L2-normalised 512-d
embeddings. Module and parameter names follow the official checkpoints
(``model_ir_se50.pth``, ``CurricularFace_Backbone.pth``), so their state_dicts load unchanged:

* ``input_layer``: conv3x3(3->64, no bias) -> BatchNorm2d -> PReLU(64)
* ``body.i``: residual units; ``res_layer`` = BN -> conv3x3 -> PReLU -> conv3x3 (stride s) -> BN
  [-> SE block ``res_layer.5.fc1/fc2`` for IR-SE], plus a shortcut that is ``x[:, :, ::s, ::s]``
  when channels match (upstream: a parameter-free ``MaxPool2d(1, s)``) or
  ``shortcut_layer.0/1`` = conv1x1 (stride s) -> BN otherwise. No activation after the sum.
  The first unit of each of the four stages (64, 128, 256, 512 channels) has stride 2.
* ``output_layer``: BN2d(512) -> Dropout -> flatten (C, H, W order) -> Linear(25088, 512)
  -> BatchNorm1d(512) (``affine=False`` for IR-101, so no weight/bias keys there).
* output ``y / ||y||`` with no epsilon (as upstream: an all-zero head output would give NaN).

The networks are returned in eval mode; dropout (p 0.6 / 0.4) and batch statistics are only
meaningful for training them, which this toolkit never does.

Optional: :func:`inception_resnet_v1` wraps facenet-pytorch's InceptionResnetV1 (VGGFace2
weights file ``20180402-114759-vggface2.pt``, loaded from the checkpoint folder, never downloaded)
as an alternative identity network with the same ``forward`` contract (input 160x160).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from guide.identity.weights import PathLike, load_state_dict_file

EMBEDDING_DIM = 512
INPUT_SIZE = 112

# units per stage for the two depths GUIDE uses
_STAGE_UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}
_STAGE_DEPTHS = (64, 128, 256, 512)

DeviceLike = Union[str, torch.device, None]


class SEModule(nn.Module):
    """Squeeze-and-excitation gate: mean over H,W -> fc1 -> ReLU -> fc2 -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.adaptive_avg_pool2d(x, 1)
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(gate))))
        return x * gate


class IRUnit(nn.Module):
    """One improved-residual unit (``bottleneck_IR`` / ``bottleneck_IR_SE`` upstream)."""

    def __init__(self, in_channels: int, depth: int, stride: int, se: bool) -> None:
        super().__init__()
        self.stride = stride
        if in_channels == depth:
            self.shortcut_layer: Optional[nn.Module] = None  # plain subsampling, no parameters
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(depth),
            )
        layers: List[nn.Module] = [
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, kernel_size=3, stride=1, padding=1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(depth),
        ]
        if se:
            layers.append(SEModule(depth, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut_layer is None:
            shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        else:
            shortcut = self.shortcut_layer(x)
        return self.res_layer(x) + shortcut


def unit_plan(num_layers: int) -> List[Tuple[int, int, int]]:
    """``(in_channels, depth, stride)`` of every body unit for IR-50 (50) or IR-101 (100)."""
    if num_layers not in _STAGE_UNITS:
        raise ValueError(f"num_layers must be one of {sorted(_STAGE_UNITS)}, got {num_layers}")
    plan = []
    in_ch = 64
    for depth, units in zip(_STAGE_DEPTHS, _STAGE_UNITS[num_layers]):
        plan.append((in_ch, depth, 2))
        plan.extend((depth, depth, 1) for _ in range(units - 1))
        in_ch = depth
    return plan


class IRBackbone(nn.Module):
    """The IR / IR-SE ResNet (``Backbone(112, num_layers, mode, drop_ratio, affine)`` upstream).

    ``forward(x)``: ``[N, 3, 112, 112]`` -> L2-normalised ``[N, 512]``.
    """

    input_size = INPUT_SIZE

    def __init__(self, num_layers: int, se: bool, drop_ratio: float, affine: bool) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.se = se
        # registration order input_layer, output_layer, body = official state_dict order
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.PReLU(64),
        )
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512),
            nn.Dropout(drop_ratio),
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, EMBEDDING_DIM),
            nn.BatchNorm1d(EMBEDDING_DIM, affine=affine),
        )
        self.body = nn.Sequential(*(IRUnit(i, d, s, se) for i, d, s in unit_plan(num_layers)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Head output before the L2 normalisation, ``[N, 512]``."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"expected [N, 3, 112, 112] input, got {tuple(x.shape)}")
        return self.output_layer(self.body(self.input_layer(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(x)
        return y / torch.norm(y, 2, 1, True)

    def load_weights(self, path: PathLike) -> "IRBackbone":
        """Load an official weight file (strict keys, ``weights_only``); returns ``self``."""
        load_state_dict_file(self, path)
        return self


def _finish(
    net: nn.Module, weights: Optional[PathLike], device: DeviceLike, dtype: Optional[torch.dtype]
) -> nn.Module:
    if weights is not None:
        net.load_weights(weights)
    net.eval()
    if device is not None or dtype is not None:
        net.to(device=device, dtype=dtype)
    return net


def ir_se50(
    weights: Optional[PathLike] = None,
    *,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = None,
) -> IRBackbone:
    """ArcFace IR-SE50 (identity loss), eval mode; ``weights``: e.g. ``model_ir_se50.pth``.

    Without ``weights`` the parameters keep PyTorch's random initialisation.
    """
    return _finish(IRBackbone(50, se=True, drop_ratio=0.6, affine=True), weights, device, dtype)


def ir101(
    weights: Optional[PathLike] = None,
    *,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = None,
) -> IRBackbone:
    """CurricularFace IR-101 (identity evaluation), eval mode; ``weights``: ``CurricularFace_Backbone.pth``.

    Without ``weights`` the parameters keep PyTorch's random initialisation.
    """
    return _finish(IRBackbone(100, se=False, drop_ratio=0.4, affine=False), weights, device, dtype)


# ----------------------------------------------------------------------------------------------
# optional alternative: facenet-pytorch InceptionResnetV1 (VGGFace2)

VGGFACE2_FILE = "20180402-114759-vggface2.pt"
_VGGFACE2_CLASSES = 8631


class InceptionResnetV1Embedder(nn.Module):
    """facenet-pytorch's InceptionResnetV1 with the backbone contract: ``[N,3,160,160]`` -> unit ``[N,512]``.

    Inputs are expected in facenet's "fixed standardisation" ((u8 - 127.5) / 128), i.e. about
    [-1, 1] like the IR backbones. The state_dict keys are facenet-pytorch's, under ``net.``.
    """

    input_size = 160

    def __init__(self) -> None:
        super().__init__()
        from facenet_pytorch import InceptionResnetV1

        self.net = InceptionResnetV1(pretrained=None, classify=False)
        # the official file also holds the VGGFace2 classifier; add it (unused by forward) so
        # that file loads with a strict key match
        self.net.logits = nn.Linear(512, _VGGFACE2_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def load_weights(self, path: PathLike) -> "InceptionResnetV1Embedder":
        """Load facenet-pytorch's ``20180402-114759-vggface2.pt`` (strict keys); returns ``self``."""
        load_state_dict_file(self.net, path)
        return self


def inception_resnet_v1(
    weights: Optional[PathLike] = None,
    *,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = None,
) -> InceptionResnetV1Embedder:
    """Optional facenet-pytorch InceptionResnetV1 embedder, eval mode; ``weights``: the VGGFace2 file."""
    return _finish(InceptionResnetV1Embedder(), weights, device, dtype)


def backbone_input_size(backbone: nn.Module) -> int:
    """Square input size a backbone expects (``input_size`` attribute, default 112)."""
    return int(getattr(backbone, "input_size", INPUT_SIZE))


__all__: Sequence[str] = [
    "EMBEDDING_DIM",
    "INPUT_SIZE",
    "IRBackbone",
    "IRUnit",
    "SEModule",
    "InceptionResnetV1Embedder",
    "VGGFACE2_FILE",
    "backbone_input_size",
    "inception_resnet_v1",
    "ir101",
    "ir_se50",
    "unit_plan",
]
