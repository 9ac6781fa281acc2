"""pytorch-fid's Inception-v3 feature extractor, with weights from the checkpoints folder only.

:func:`pytorch_fid.inception.InceptionV3` builds its network through ``fid_inception_v3()``,
which fetches ``pt_inception-2015-12-05-6726825d.pth`` with ``load_state_dict_from_url``. We
build the very same module while that module-level loader is replaced (for the duration of the
construction only) by one that returns the local file's state_dict, read with
``weights_only=True`` and checked key by key against the network -- so nothing is ever
downloaded. ``random_weights=True`` instead keeps a seeded random initialisation (tests, demos).

:class:`InceptionFeatures` reproduces the reference's image path: generator output in [-1, 1]
-> uint8 with GUIDE's ``x*127.5 + 128`` clamp-and-truncate (the reference saved PNGs this way)
-> ``/255`` (ToTensor) -> pytorch-fid (bilinear resize to 299x299, scale to [-1, 1]) -> final
average-pool features ``[N, 2048]``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Union
from unittest import mock

import torch
from torch import nn

from guide.evaluate.frechet import FEATURE_DIM

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
DeviceLike = Union[str, torch.device]


def _build(state_for: Callable[[nn.Module], Mapping[str, torch.Tensor]]) -> nn.Module:
    """pytorch-fid's ``InceptionV3([pool3])`` whose inner network gets ``state_for(network)``."""
    from pytorch_fid import inception as pf

    built: Dict[str, nn.Module] = {}
    original = pf._inception_v3

    def capture(*args, **kwargs):
        built["net"] = original(*args, **kwargs)
        return built["net"]

    def local_weights(url, *args, **kwargs):
        return state_for(built["net"])

    with mock.patch.object(pf, "_inception_v3", capture), mock.patch.object(pf, "load_state_dict_from_url",
                                                                            local_weights):
        return pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM]], resize_input=True,
                              normalize_input=True)


def _file_state(path: Path) -> Callable[[nn.Module], Mapping[str, torch.Tensor]]:
    from guide.identity.weights import check_state_dict, read_state_dict

    def state_for(net: nn.Module) -> Mapping[str, torch.Tensor]:
        state = read_state_dict(path)
        check_state_dict(net.state_dict(), state, f"weight file {path.name}")
        return state

    return state_for


def _random_state(seed: int) -> Callable[[nn.Module], Mapping[str, torch.Tensor]]:
    def state_for(net: nn.Module) -> Mapping[str, torch.Tensor]:
        # He-normal convolutions keep activations alive through the depth of a random network
        gen = torch.Generator().manual_seed(seed)
        state = {}
        for name, value in net.state_dict().items():
            if name.endswith("conv.weight") or name == "fc.weight":
                fan_in = value[0].numel()
                value = torch.randn(value.shape, generator=gen) * (2.0 / fan_in) ** 0.5
            state[name] = value.clone()
        return state

    return state_for


class InceptionFeatures(nn.Module):
    """Images ``[N, 3, H, W]`` in [-1, 1] -> pytorch-fid pool features ``[N, 2048]`` (float32).

    ``identifier`` names the weights (file hash or random seed) for feature caches.
    """

    dims = FEATURE_DIM

    def __init__(self, network: nn.Module, identifier: str) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.identifier = identifier

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @staticmethod
    def to_unit_range(images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] float -> [0, 1] float through uint8 exactly as the reference's saved PNGs."""
        quantised = (images.detach() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        return quantised.to(torch.float32) / 255.0

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.to_unit_range(images.to(self.device, torch.float32))
        out = self.network(x)[0]
        return out.reshape(out.shape[0], -1).float()


def inception_features(
    checkpoint_dir: Optional[Union[str, os.PathLike]] = None,
    *,
    device: DeviceLike = "cpu",
    random_weights: bool = False,
    seed: int = 0,
) -> InceptionFeatures:
    """The FID feature extractor on ``device``.

    Weights: ``pt_inception-2015-12-05-6726825d.pth`` from the checkpoint folder (resolved as
    everywhere: argument, ``$GUIDE_CHECKPOINTS``, ``./checkpoints``), never downloaded; a missing
    or damaged file is a one-line error. ``random_weights=True``: a seeded random network instead.
    """
    if random_weights:
        network = _build(_random_state(seed))
        identifier = f"random-inception-seed{seed}"
    else:
        from guide.checkpoints import require_checkpoint
        from guide.io.hashing import sha256_file
        from guide.paths import resolve_checkpoint_dir

        path = require_checkpoint(INCEPTION_FILE, resolve_checkpoint_dir(checkpoint_dir))
        network = _build(_file_state(path))
        identifier = f"{INCEPTION_FILE}:{sha256_file(path)}"
    return InceptionFeatures(network, identifier).to(device)
