"""Cheap structural checks of weight files: right kind of header, not obviously truncated.

These read a few bytes from each end of a file (safetensors: its JSON header), so they
are fast enough for every status listing; a full check opens the file with its loader.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Optional, Union

__all__ = ["KINDS", "quick_problem"]

PathLike = Union[str, "os.PathLike[str]"]

#: Kinds of weight files the toolkit reads.
KINDS = ("eg3d_pkl", "torch", "safetensors")

_ZIP_HEAD = b"PK\x03\x04"
_ZIP_END = b"PK\x05\x06"
_ZIP_TAIL = 65536 + 22  # end-of-central-directory record plus the longest comment


def _head_tail(path: Path, head: int, tail: int) -> tuple[bytes, bytes, int]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        first = f.read(head)
        f.seek(max(0, size - tail))
        last = f.read(tail)
    return first, last, size


def _pickle_problem(first: bytes, last: bytes) -> Optional[str]:
    if len(first) < 2 or first[0] != 0x80 or not 2 <= first[1] <= 5:
        return "not a pickle (unexpected header)"
    if not last.endswith(b"."):
        return "truncated (the pickle does not end with its STOP opcode)"
    return None


def _torch_problem(first: bytes, last: bytes) -> Optional[str]:
    if first.startswith(_ZIP_HEAD):
        return None if _ZIP_END in last else "truncated (zip archive without its end record)"
    if len(first) >= 2 and first[0] == 0x80:
        return None  # legacy torch.save stream: only a full load can tell
    return "not a PyTorch checkpoint (unexpected header)"


def _safetensors_problem(path: Path, size: int) -> Optional[str]:
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            return "truncated (no safetensors header)"
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8 or n > 100_000_000:
            return "truncated or not a safetensors file (header length out of range)"
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "not a safetensors file (unreadable header)"
    if not isinstance(header, dict):
        return "not a safetensors file (unreadable header)"
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and isinstance(v.get("data_offsets"), list)]
    expected = 8 + n + max(ends, default=0)
    if size < expected:
        return f"truncated ({size} bytes, its header describes {expected})"
    return None


def quick_problem(path: PathLike, kind: str) -> Optional[str]:
    """``None`` if ``path`` looks like a complete file of ``kind``, else a short reason.

    ``kind`` is one of :data:`KINDS`. Raises ``OSError`` if the file cannot be read.
    """
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown weight file kind {kind!r}; expected one of {KINDS}")
    first, last, size = _head_tail(path, 8, _ZIP_TAIL)
    if size == 0:
        return "empty (0 bytes)"
    if kind == "eg3d_pkl":
        return _pickle_problem(first, last)
    if kind == "torch":
        return _torch_problem(first, last)
    return _safetensors_problem(path, size)
