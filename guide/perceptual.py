"""LPIPS (VGG16) perceptual distance with locally stored weights -- never a download.

GUIDE uses ``lpips.LPIPS(net="vgg")`` (version 0.1, inputs in [-1, 1]) and averages the per-sample
distances (``lpips_fn(a, b).mean()``). :func:`lpips_vgg` builds the same network from the
``lpips`` package without letting it fetch anything:

* the VGG16 trunk is constructed with random weights (``pnet_rand=True``) and then filled from
  torchvision's ImageNet file ``vgg16-397923af.pth`` in the checkpoint folder: the file's
  ``features.<i>.weight/bias`` go to lpips' ``net.slice<k>.<i>.*`` (lpips keeps torchvision's layer
  indices inside its five slices 0-3, 4-8, 9-15, 16-22, 23-29); ``classifier.*`` is ignored;
* the five linear heads (``lin0..lin4``) come from the file that ships inside the ``lpips``
  package (``weights/v0.1/vgg.pth``, saved from CUDA, hence ``map_location="cpu"``);
* ``random_backbone=True`` skips the VGG16 file (random trunk, real heads) for tests/benchmarks.

The heads contain ``Dropout(0.5)`` (lpips' ``use_dropout=True`` default, kept so the key names
match): upstream relies on lpips calling ``eval()`` once. :class:`PerceptualLoss` keeps the network
in eval mode even when registered under a module that gets ``.train()``, and freezes its
parameters; gradients still flow to both input images.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, Optional, Union

import torch
from torch import nn

from guide.identity.weights import (
    PathLike,
    WeightsError,
    check_state_dict,
    read_state_dict,
)

VGG16_FILE = "vgg16-397923af.pth"
VGG16_PURPOSE = "torchvision's ImageNet VGG16, the backbone of the LPIPS perceptual loss"
LPIPS_VERSION = "0.1"

DeviceLike = Union[str, torch.device, None]


def lpips_heads_file(net: str = "vgg") -> Path:
    """The linear-head weights of ``net`` ('vgg' or 'alex') shipped inside the installed ``lpips`` package."""
    import lpips

    return Path(lpips.__file__).resolve().parent / "weights" / f"v{LPIPS_VERSION}" / f"{net}.pth"


def vgg_features_to_lpips(state: Dict[str, torch.Tensor], trunk: nn.Module) -> Dict[str, torch.Tensor]:
    """Map torchvision ``features.<i>.*`` tensors onto the lpips trunk's ``slice<k>.<i>.*`` keys."""
    by_index = {}
    for key in trunk.state_dict():  # e.g. "slice3.12.weight"
        _, index, leaf = key.split(".")
        by_index[f"features.{index}.{leaf}"] = key
    return {by_index[k]: v for k, v in state.items() if k in by_index}


def _load_trunk(trunk: nn.Module, path: PathLike) -> None:
    state = read_state_dict(path)
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        raise WeightsError(f"{Path(path).name} has no features.* tensors; is it a torchvision VGG16 file?")
    mapped = vgg_features_to_lpips(features, trunk)
    unused = sorted(set(features) - {f"features.{k.split('.', 1)[1]}" for k in mapped})
    if unused:
        raise WeightsError(f"{Path(path).name} has VGG16 layers lpips does not use: {', '.join(unused[:5])}")
    check_state_dict(trunk.state_dict(), mapped, f"VGG16 file {Path(path).name}")
    trunk.load_state_dict(mapped, strict=True)


def _load_heads(model: nn.Module, path: PathLike) -> None:
    state = read_state_dict(path)
    expected = {k: v for k, v in model.state_dict().items() if k.startswith("lin") and not k.startswith("lins.")}
    check_state_dict(expected, state, f"LPIPS head file {Path(path).name}")
    with torch.no_grad():
        for key, value in state.items():
            model.get_parameter(key).copy_(value)


class PerceptualLoss(nn.Module):
    """LPIPS distance ``forward(x, y) -> [N]`` for images in [-1, 1] (``normalize=True``: [0, 1]).

    Wraps an ``lpips.LPIPS`` module (``self.lpips``); frozen and always in eval mode.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.lpips = model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        """Switch this wrapper's mode; the LPIPS network always stays in eval mode."""
        super().train(mode)
        self.lpips.eval()
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self.lpips(x, y, normalize=normalize).flatten()


def lpips_vgg(
    weights: Optional[PathLike] = None,
    *,
    random_backbone: bool = False,
    checkpoint_dir: Optional[PathLike] = None,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = None,
) -> PerceptualLoss:
    """LPIPS-VGG16 (v0.1) with the trunk from ``weights`` or ``<checkpoints>/vgg16-397923af.pth``.

    ``random_backbone=True`` keeps a randomly initialised trunk (tests, benchmarks) and reads no
    VGG16 file. A missing VGG16 file raises the registry's one-line checkpoint error
    (:func:`guide.checkpoints.require_checkpoint`) naming the file, its purpose and where to get it.
    """
    import lpips

    if random_backbone and weights is not None:
        raise ValueError("pass either weights or random_backbone=True, not both")
    if not random_backbone:
        if weights is None:
            from guide.checkpoints import require_checkpoint
            from guide.paths import resolve_checkpoint_dir

            weights = require_checkpoint(VGG16_FILE, resolve_checkpoint_dir(checkpoint_dir))
        if not Path(weights).is_file():
            raise WeightsError(
                f"missing {Path(weights).name} ({VGG16_PURPOSE}) at {weights}; get it from "
                f"https://download.pytorch.org/models/{VGG16_FILE}"
            )
    with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" notices
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=False, net="vgg", version=LPIPS_VERSION, pnet_rand=True, verbose=False)
    _load_heads(model, lpips_heads_file())
    if not random_backbone:
        _load_trunk(model.net, weights)
    loss = PerceptualLoss(model)
    if device is not None or dtype is not None:
        loss.to(device=device, dtype=dtype)
    return loss


def lpips_alex_random(seed: int = 0, *, device: DeviceLike = None) -> PerceptualLoss:
    """LPIPS with a seeded RANDOM AlexNet trunk and lpips' own AlexNet heads (v0.1): the toy world's
    perceptual term. On a CPU an AlexNet trunk costs a small fraction of VGG16's at 128² (the toy
    erase calls it on every render); random conv features still compare local structure and colour,
    and the heads' non-negative weights keep it a distance. Reads no file besides lpips' heads."""
    import lpips

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=False, net="alex", version=LPIPS_VERSION, pnet_rand=True, verbose=False)
    _load_heads(model, lpips_heads_file("alex"))
    loss = PerceptualLoss(model)
    return loss.to(device=device) if device is not None else loss


__all__ = ["LPIPS_VERSION", "PerceptualLoss", "VGG16_FILE", "lpips_alex_random", "lpips_heads_file", "lpips_vgg",
           "vgg_features_to_lpips"]
