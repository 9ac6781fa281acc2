"""Reading plain state_dict files (`torch.save(model.state_dict())`) safely and checking them."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Union

import torch

_SHOW = 5  # how many offending keys an error message names


def read_state_dict(path: Union[str, Path], map_location: Union[str, torch.device, None] = "cpu") -> dict:
    """Load a file holding a flat `{name: tensor}` dict with `torch.load(weights_only=True)`.

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: the file is truncated or corrupt, holds anything but tensors (no code is
            ever unpickled), or is not a flat dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        obj = torch.load(path, weights_only=True, map_location=map_location)
    except Exception as err:  # noqa: BLE001 - weights_only runs nothing: any failure means a damaged file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot read {path} as a state_dict file (truncated or corrupt?): {first}") from err
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path} is not a flat state_dict; entries that are not tensors: {_names(bad)}")
    return dict(obj)


def check_state_dict(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor],
                     source: str = "state_dict") -> None:
    """Raise ValueError unless `found` has exactly the keys, shapes and dtypes of `expected`.

    The message names the first few missing, unexpected and mis-shaped keys.
    """
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} {tuple(found[k].shape)} (expected {tuple(expected[k].shape)})"
              for k in expected if k in found and found[k].shape != expected[k].shape]
    dtypes = [f"{k} {found[k].dtype} (expected {expected[k].dtype})"
              for k in expected if k in found and found[k].dtype != expected[k].dtype]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_names(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {_names(shapes)}")
    if dtypes:
        problems.append(f"{len(dtypes)} dtype mismatch(es): {_names(dtypes)}")
    if problems:
        raise ValueError(f"{source} does not match the model: " + "; ".join(problems))


def _names(items: list) -> str:
    shown = ", ".join(str(k) for k in items[:_SHOW])
    return shown + (f", ... (+{len(items) - _SHOW} more)" if len(items) > _SHOW else "")
