"""Loading official weight files into our modules: safe unpickling, strict key checks.

Every network in :mod:`guide.identity` and :mod:`guide.perceptual` loads its weights
through :func:`load_state_dict_file`, which

* reads with ``torch.load(..., weights_only=True, map_location="cpu")`` only (no arbitrary
  unpickling; ``map_location`` because some official files were saved from CUDA tensors),
* strips a leading ``module.`` (files saved from ``nn.DataParallel``),
* compares the key set and every shape with the module's own ``state_dict`` and raises a
  :class:`WeightsError` that names the first differing keys,
* copies the tensors in (``load_state_dict(strict=True)``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Union

import torch
from torch import nn

from guide.errors import GuideError

PathLike = Union[str, os.PathLike]

_SHOW = 5  # how many offending keys an error message lists


class WeightsError(GuideError):
    """A weight file is missing, unreadable, or does not fit the network."""


def read_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """Tensors of a weight file (``weights_only=True``, on CPU), without a ``module.`` prefix.

    A file holding ``{"state_dict": {...}}`` is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weight file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or corrupt file
        raise WeightsError(f"cannot read weight file {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise WeightsError(f"weight file {path} does not hold a state_dict of tensors")
    return strip_prefix(dict(obj), "module.")


def strip_prefix(state: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """``state`` with ``prefix`` removed from the keys, if every key starts with it."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _listing(keys: List[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return shown + (f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


def check_state_dict(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], what: str
) -> None:
    """Raise :class:`WeightsError` unless ``given`` has exactly ``expected``'s keys and shapes."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = [
        f"{k} {tuple(given[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and tuple(given[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {_listing(wrong)}")
    if problems:
        raise WeightsError(f"{what} does not fit the network: " + "; ".join(problems))


def load_state_dict_file(
    module: nn.Module,
    path: PathLike,
    *,
    rename: Optional[Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]] = None,
) -> nn.Module:
    """Load weight file ``path`` into ``module`` with a strict key/shape match; returns ``module``.

    ``rename`` optionally maps the file's (prefix-stripped) state_dict onto the module's key names.
    """
    state = read_state_dict(path)
    if rename is not None:
        state = rename(state)
    check_state_dict(module.state_dict(), state, f"weight file {Path(path).name}")
    module.load_state_dict(state, strict=True)
    return module
