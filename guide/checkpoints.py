"""The checkpoint registry: which weight files the toolkit uses, their state, and access to them.

The list lives in ``guide/checkpoints_manifest.json`` (package data): file name, kind, what
it is for, which commands need it, where to get it, size/SHA-256 where known, licence.
Commands call :func:`require_checkpoint` (or :func:`open_checkpoint`) so that a missing or
damaged file is reported as one line naming the file, its purpose and its source.
"""
from __future__ import annotations

import functools
import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

from guide.io.errors import CheckpointFileError, CorruptCheckpointError, MissingCheckpointError
from guide.io.hashing import sha256_file
from guide.io.sniff import KINDS, quick_problem

__all__ = [
    "MANIFEST_NAME",
    "MISMATCH",
    "MISSING",
    "PRESENT",
    "STATES",
    "UNREADABLE",
    "CheckpointEntry",
    "CheckpointStatus",
    "checkpoint_status",
    "checkpoint_statuses",
    "load_manifest",
    "open_checkpoint",
    "registry",
    "require_checkpoint",
]

if TYPE_CHECKING:
    import torch

PathLike = Union[str, "os.PathLike[str]"]

MANIFEST_NAME = "checkpoints_manifest.json"
PRESENT, MISSING, MISMATCH, UNREADABLE = "present", "missing", "mismatch", "unreadable"
STATES = (PRESENT, MISSING, MISMATCH, UNREADABLE)


@dataclass(frozen=True)
class CheckpointEntry:
    """One weight file the toolkit can use (a manifest row)."""

    name: str
    kind: str
    what: str
    purpose: str
    used_by: Tuple[str, ...]
    source_project: str
    source_url: Optional[str]
    source_notes: Optional[str]
    size_bytes: Optional[int]
    sha256: Optional[str]
    sha256_prefix: Optional[str]
    licence: Optional[str]

    @property
    def where_to_get(self) -> str:
        """``project (url)``, for messages."""
        return f"{self.source_project} ({self.source_url})" if self.source_url else self.source_project

    @property
    def commands(self) -> str:
        """``guide unlearn, guide evaluate`` for messages."""
        return ", ".join(f"guide {c}" for c in self.used_by) or "no command yet"


@dataclass(frozen=True)
class CheckpointStatus:
    """State of one registry file in a checkpoint directory."""

    name: str
    path: Path
    state: str
    bytes: Optional[int]
    detail: str = ""
    sha256: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "state": self.state, "bytes": self.bytes,
                "detail": self.detail, "sha256": self.sha256}


# ------------------------------------------------------------------------------ manifest


def _entry(row: Mapping[str, Any]) -> CheckpointEntry:
    source = row.get("source") or {}
    entry = CheckpointEntry(
        name=row["name"],
        kind=row["kind"],
        what=row["what"],
        purpose=row["purpose"],
        used_by=tuple(row.get("used_by") or ()),
        source_project=source["project"],
        source_url=source.get("url"),
        source_notes=source.get("notes"),
        size_bytes=row.get("size_bytes"),
        sha256=(row.get("sha256") or None) and row["sha256"].lower(),
        sha256_prefix=(row.get("sha256_prefix") or None) and row["sha256_prefix"].lower(),
        licence=row.get("licence"),
    )
    if entry.kind not in KINDS:
        raise ValueError(f"manifest entry {entry.name}: unknown kind {entry.kind!r}")
    if Path(entry.name).name != entry.name:
        raise ValueError(f"manifest entry {entry.name}: must be a plain file name")
    return entry


def load_manifest(path: Optional[PathLike] = None) -> Dict[str, CheckpointEntry]:
    """Name -> entry, in manifest order; ``path`` defaults to the packaged manifest."""
    if path is None:
        text = importlib.resources.files("guide").joinpath(MANIFEST_NAME).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    rows = json.loads(text)["files"]
    entries = [_entry(row) for row in rows]
    return {e.name: e for e in entries}


@functools.lru_cache(maxsize=1)
def _packaged() -> Dict[str, CheckpointEntry]:
    return load_manifest()


def registry() -> Mapping[str, CheckpointEntry]:
    """The packaged registry (name -> :class:`CheckpointEntry`), loaded once."""
    return dict(_packaged())


def _lookup(name: Union[str, CheckpointEntry]) -> CheckpointEntry:
    if isinstance(name, CheckpointEntry):
        return name
    try:
        return _packaged()[name]
    except KeyError:
        raise ValueError(f"{name!r} is not in the checkpoint registry ({', '.join(_packaged())})") from None


# -------------------------------------------------------------------------------- status


def _hash_problem(entry: CheckpointEntry, digest: str) -> Optional[str]:
    if entry.sha256 and digest != entry.sha256:
        return f"sha256 {digest[:12]}… differs from the expected {entry.sha256[:12]}…"
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix):
        return f"sha256 {digest[:12]}… does not start with {entry.sha256_prefix} (the prefix in its name)"
    return None


def checkpoint_status(
    name: Union[str, CheckpointEntry], checkpoint_dir: PathLike, *, verify: bool = False
) -> CheckpointStatus:
    """State of one file: present, missing, mismatch (size/SHA-256) or unreadable.

    Without ``verify`` only cheap checks run (size when known, header, truncation signs).
    With ``verify`` the SHA-256 is computed and checked where known, and the file is
    opened with its loader (nothing in it is executed).
    """
    entry = _lookup(name)
    path = Path(checkpoint_dir) / entry.name
    if not path.exists():
        return CheckpointStatus(entry.name, path, MISSING, None, f"get it from {entry.where_to_get}")
    try:
        size = path.stat().st_size
        if not path.is_file():
            return CheckpointStatus(entry.name, path, UNREADABLE, None, "not a regular file")
        if entry.size_bytes is not None and size != entry.size_bytes:
            return CheckpointStatus(entry.name, path, MISMATCH, size, f"{size} bytes, expected {entry.size_bytes}")
        problem = quick_problem(path, entry.kind)
        if problem:
            return CheckpointStatus(entry.name, path, UNREADABLE, size, problem)
        if not verify:
            return CheckpointStatus(entry.name, path, PRESENT, size)
        digest = sha256_file(path)
    except OSError as exc:
        return CheckpointStatus(entry.name, path, UNREADABLE, None, f"cannot read ({exc.strerror or exc})")
    problem = _hash_problem(entry, digest)
    if problem:
        return CheckpointStatus(entry.name, path, MISMATCH, size, problem, digest)
    try:
        _load(entry, path, "cpu")
    except CheckpointFileError as exc:
        return CheckpointStatus(entry.name, path, UNREADABLE, size, exc.one_line(), digest)
    detail = "sha256 verified" if entry.sha256 or entry.sha256_prefix else "opens cleanly (no known sha256)"
    return CheckpointStatus(entry.name, path, PRESENT, size, detail, digest)


def checkpoint_statuses(checkpoint_dir: PathLike, *, verify: bool = False) -> List[CheckpointStatus]:
    """:func:`checkpoint_status` of every registry file, in manifest order."""
    return [checkpoint_status(entry, checkpoint_dir, verify=verify) for entry in _packaged().values()]


# ---------------------------------------------------------------------------- access


def require_checkpoint(name: str, checkpoint_dir: PathLike) -> Path:
    """Path of registry file ``name`` in ``checkpoint_dir``, after cheap integrity checks.

    Missing -> :class:`~guide.io.errors.MissingCheckpointError` naming the file, what it is
    for, which commands need it and where to get it. Empty, wrong size or visibly truncated
    -> :class:`~guide.io.errors.CorruptCheckpointError`. Both print as one line in the CLI.
    """
    entry = _lookup(name)
    directory = Path(checkpoint_dir)
    path = directory / entry.name
    if not path.is_file():
        raise MissingCheckpointError(
            f"checkpoint {entry.name} is missing from {directory}: it is {entry.purpose} "
            f"(needed by {entry.commands}). Get it from {entry.where_to_get} and put it in that folder, "
            "or point --checkpoints / $GUIDE_CHECKPOINTS at the folder that has it")
    try:
        size = path.stat().st_size
        problem = (f"{size} bytes, expected {entry.size_bytes}"
                   if entry.size_bytes is not None and size != entry.size_bytes else quick_problem(path, entry.kind))
    except OSError as exc:
        problem = f"unreadable ({exc.strerror or exc})"
    if problem:
        raise CorruptCheckpointError(
            f"checkpoint {path} is {problem}; download it again from {entry.where_to_get}")
    return path


def _load(entry: CheckpointEntry, path: Path, device: Union[str, "torch.device"]) -> Any:
    if entry.kind == "eg3d_pkl":
        from eg3d.network_pkl import CheckpointFormatError, UnsafeCheckpointError, load_network_pkl

        try:
            return load_network_pkl(path, device=device)
        except (UnsafeCheckpointError, CheckpointFormatError) as exc:
            raise CorruptCheckpointError(" ".join(str(exc).split())) from None
    from guide.io.state_files import load_state_file

    return load_state_file(path, device=device)


def open_checkpoint(name: str, checkpoint_dir: PathLike, *, device: Union[str, "torch.device"] = "cpu") -> Any:
    """:func:`require_checkpoint`, then load the file with its safe loader.

    EG3D pickles give :func:`eg3d.load_network_pkl`'s dict; other files what
    :func:`guide.io.load_state_file` returns. Damage shows up as a one-line
    :class:`~guide.io.errors.CorruptCheckpointError` that says where to get the file again.
    """
    entry = _lookup(name)
    path = require_checkpoint(entry.name, checkpoint_dir)
    try:
        return _load(entry, path, device)
    except CorruptCheckpointError as exc:
        raise CorruptCheckpointError(
            f"{exc.one_line()} - download {entry.name} again from {entry.where_to_get}") from None
