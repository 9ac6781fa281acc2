"""Load plain weight files (``.pt``/``.pth``/``.safetensors``) without executing anything.

``torch.load(..., weights_only=True)`` only rebuilds tensors and plain containers, and
safetensors holds nothing but tensors; every failure comes back as one line naming the file.
"""
from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, Union

import torch

from .errors import CorruptCheckpointError, MissingCheckpointError

__all__ = ["load_state_file"]

PathLike = Union[str, "os.PathLike[str]"]


def _first_line(exc: BaseException, limit: int = 200) -> str:
    for line in str(exc).splitlines():
        if line.strip():
            return " ".join(line.split())[:limit]
    return type(exc).__name__


def _weights_only_reason(exc: BaseException) -> tuple[bool, str]:
    """(refused for holding Python objects?, the specific sentence) of a weights_only failure.

    torch wraps the actual reason ('unsupported GLOBAL ...', 'Unsupported operand ...')
    between paragraphs of general advice; pick it out.
    """
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line:
            return True, line[:200]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            return False, (rest or (lines[i + 1] if i + 1 < len(lines) else type(exc).__name__))[:200]
    return False, _first_line(exc)


def _is_safetensors(path: Path) -> bool:
    return path.suffix == ".safetensors"


def load_state_file(path: PathLike, *, device: Union[str, torch.device] = "cpu") -> Any:
    """What the file holds (usually a state_dict; a tensor for ``w_avg_*.pt``), on ``device``.

    Raises :class:`~guide.io.errors.MissingCheckpointError` or
    :class:`~guide.io.errors.CorruptCheckpointError` (empty, truncated, damaged, or holding
    Python objects that ``weights_only`` refuses), each with a one-line message.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingCheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CorruptCheckpointError(f"{path}: file is empty (0 bytes); download it again")
    if _is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device=str(device))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CorruptCheckpointError(
                f"{path}: truncated or corrupt safetensors file ({_first_line(exc)})") from None
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused, reason = _weights_only_reason(exc)
        if refused:
            raise CorruptCheckpointError(
                f"{path}: refused: it holds Python objects, not just tensors ({reason})") from None
        raise CorruptCheckpointError(f"{path}: truncated or corrupt ({reason})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError,
            struct.error) as exc:
        raise CorruptCheckpointError(f"{path}: truncated or corrupt ({_first_line(exc)})") from None

