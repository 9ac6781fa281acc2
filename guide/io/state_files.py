"""Load plain weight files (``.pt``/``.pth``/``.safetensors``) without executing anything.

``torch.load(..., weights_only=True)`` only rebuilds tensors and plain containers, and
safetensors holds nothing but tensors; every failure comes back as one line naming the file.

Memory stays bounded by the file: what ``torch.load`` returns are views of the storages it
read, and before any caller materialises one, :func:`check_tensors` refuses a tensor larger
than :data:`guide.limits.MAX_TENSOR_ELEMENTS`, one indexing outside its storage, and views
that claim many more elements than their storages hold (a stride-0 ``[10^9]`` tensor over 4
bytes); a small expanded view, such as a ``[14, 512]`` broadcast of one row, stays allowed.
Containers may nest :data:`guide.limits.MAX_NESTING` deep.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Optional, Union

import torch

from guide.limits import MAX_NESTING, MAX_TENSOR_ELEMENTS, MAX_VIEW_EXPANSION

from .errors import CorruptCheckpointError, MissingCheckpointError

__all__ = ["check_tensors", "load_state_file"]

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
        value = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused, reason = _weights_only_reason(exc)
        if refused:
            raise CorruptCheckpointError(
                f"{path}: refused: it holds Python objects, not just tensors ({reason})") from None
        raise CorruptCheckpointError(f"{path}: truncated or corrupt ({reason})") from None
    except Exception as exc:  # noqa: BLE001 - weights_only runs nothing: any failure means a damaged file
        raise CorruptCheckpointError(f"{path}: truncated or corrupt ({_first_line(exc)})") from None
    check_tensors(value, str(path))
    return _to_device(value, torch.device(device))


def _to_device(value: Any, device: torch.device) -> Any:
    if device.type == "cpu":
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def _storage_problem(t: torch.Tensor) -> tuple[Optional[str], int]:
    """(why the tensor cannot be used, how many elements it claims beyond its storage)."""
    numel = t.numel()
    if numel > MAX_TENSOR_ELEMENTS:
        return f"tensor of shape {list(t.shape)} is implausibly large ({numel} elements)", 0
    if numel == 0:
        return None, 0
    size = t.element_size()
    held = t.untyped_storage().nbytes() // size - t.storage_offset()
    if any(s < 0 for s in t.stride()) or held <= sum((n - 1) * s for n, s in zip(t.shape, t.stride())):
        return f"tensor of shape {list(t.shape)} lies outside its storage", 0
    return None, max(0, numel - held)


def check_tensors(value: Any, source: str) -> None:
    """Raise a one-line CorruptCheckpointError for what :func:`load_state_file` refuses (module doc)."""
    stack, expansion, seen = [(value, 0)], 0, set()
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise CorruptCheckpointError(f"{source}: nested deeper than {MAX_NESTING} levels (or refers to itself)")
        if isinstance(node, torch.Tensor):
            if id(node) in seen:
                continue
            seen.add(id(node))
            problem, extra = _storage_problem(node)
            if problem:
                raise CorruptCheckpointError(f"{source}: {problem}")
            expansion += extra
            if expansion > MAX_VIEW_EXPANSION:
                raise CorruptCheckpointError(f"{source}: tensors claim {expansion} more elements than their "
                                             "storages hold (stride-0 views); refusing to expand them")
        elif isinstance(node, dict):
            stack.extend((item, depth + 1) for pair in node.items() for item in pair)
        elif isinstance(node, (list, tuple, set, frozenset)):
            stack.extend((item, depth + 1) for item in node)

