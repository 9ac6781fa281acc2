"""Load a generator from whatever the user has: an EG3D/GUIDE ``.pkl`` or our safetensors+JSON."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import torch

from .errors import CorruptCheckpointError, IncompatibleGeneratorError, MissingCheckpointError
from .generator_io import CONFIG_SUFFIX, WEIGHTS_SUFFIX, check_finite_weights, generator_paths, load_generator

__all__ = ["load_any_generator"]

PathLike = Union[str, "os.PathLike[str]"]


def _load_pkl(path: Path, device: Union[str, torch.device], key: str) -> torch.nn.Module:
    from eg3d.network_pkl import CheckpointFormatError, UnsafeCheckpointError, load_network_pkl

    if not path.is_file():
        raise MissingCheckpointError(f"{path}: no such file")
    try:
        data = load_network_pkl(path, device=device)
    except (UnsafeCheckpointError, CheckpointFormatError) as exc:
        raise CorruptCheckpointError(" ".join(str(exc).split())) from None
    G = data.get(key)
    if not isinstance(G, torch.nn.Module):
        found = ", ".join(data) or "nothing"
        raise IncompatibleGeneratorError(f"{path}: no generator under '{key}' (found: {found})")
    check_finite_weights(G, path)
    return G


def load_any_generator(
    path: PathLike, *, device: Union[str, torch.device] = "cpu", key: str = "G_ema"
) -> torch.nn.Module:
    """Our ``TriPlaneGenerator`` (eval mode, no grad) from any supported file.

    * ``*.pkl``: an official EG3D snapshot or a GUIDE output, read with the safe
      :func:`eg3d.load_network_pkl`; ``key`` picks the network (default ``G_ema``).
    * ``*.json`` / ``*.safetensors`` / a stem / a directory: :func:`load_generator`.

    Problems are raised as one-line :class:`~guide.io.errors.CheckpointFileError`.
    """
    p = Path(path)
    if p.suffix == ".pkl":
        return _load_pkl(p, device, key)
    weights, config = generator_paths(p)
    if p.suffix in (CONFIG_SUFFIX, WEIGHTS_SUFFIX) or config.exists() or weights.exists():
        return load_generator(p, device=device)
    raise MissingCheckpointError(
        f"{p}: neither an EG3D .pkl nor a saved generator ({config.name} + {weights.name} not found)")
