"""Atomic file writes: write a temporary file beside the target, fsync, then ``os.replace``.

A reader never sees a half-written file under the final name: either the old file (or
none) or the complete new one. Temporary names start with ``.`` and contain ``.tmp-``.
"""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


_TEMP_NAME = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{8}$")


def temp_path_for(path: PathLike) -> Path:
    """A fresh temporary path in the same directory as ``path`` (same file system)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def temp_name_pid(name: str) -> "int | None":
    """The writer's process id when ``name`` is a temporary name of :func:`temp_path_for`, else None."""
    match = _TEMP_NAME.match(name)
    return int(match.group(1)) if match else None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. platforms without directory fds
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and renamed onto ``path``.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``path`` is left untouched.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: PathLike) -> Iterator[BinaryIO]:
    """``open(path, 'wb')`` that only becomes visible under ``path`` when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            yield f


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(data)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))
