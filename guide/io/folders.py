"""Output folders: what a run may remove, and nothing else.

A command that writes a folder (``guide erase --out``, ``guide batch --out``) declares the
files it writes as patterns relative to the folder (``"renders/before_*.png"``; ``*`` stays
within one path component). :func:`plan_output_folder` decides, without touching anything,
whether a run starts fresh, resumes or replaces an earlier run, and refuses a folder that
holds someone else's files or an input of the run. :func:`open_output_folder` then creates
the folder, removes stale temporary files of interrupted atomic writes and, when replacing,
only the files that match the declared patterns: a user's notes in the folder survive
``--overwrite``.
"""
from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Union

from guide.errors import GuideError

from .atomic import temp_name_pid

PathLike = Union[str, "os.PathLike[str]"]

NEW, RESUME, REPLACE = "new", "resume", "replace"


class OutputFolderError(GuideError):
    """The output folder cannot take this run (holds results, or holds an input of the run)."""


# ----------------------------------------------------------------------------- patterns


def prefixed(prefix: str, patterns: Iterable[str]) -> List[str]:
    """``patterns`` inside the sub-folder ``prefix`` (e.g. a batch's ``alice/``)."""
    return [f"{prefix.strip('/')}/{p}" for p in patterns]


def matches(relative: str, patterns: Iterable[str]) -> bool:
    """Whether the '/'-separated relative path matches one of the patterns, part by part."""
    parts = relative.split("/")
    for pattern in patterns:
        pattern_parts = pattern.split("/")
        if len(pattern_parts) == len(parts) and all(fnmatchcase(a, b) for a, b in zip(parts, pattern_parts)):
            return True
    return False


def _files(folder: Path) -> Iterator[Path]:
    """Every file (and symlink) below `folder`; symlinked folders are not followed."""
    for root, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            yield Path(root) / name


def _relative(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


# ------------------------------------------------------------------------ stale temporaries


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own earlier write that failed: never in progress while we clean
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temps(folder: PathLike) -> int:
    """Remove temporary files that interrupted atomic writes left below `folder` (their writer
    is gone); returns how many. Files of writers still running are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in _files(folder):
        pid = temp_name_pid(path.name)
        if pid is not None and not _alive(pid) and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# ------------------------------------------------------------------------------ planning


def _entries(folder: Path) -> List[Path]:
    """What the folder holds besides stale temporary files."""
    if not folder.is_dir():
        return []
    return [p for p in _files(folder) if temp_name_pid(p.name) is None] + \
        [Path(r) / d for r, ds, _ in os.walk(folder) for d in ds if not any((Path(r) / d).iterdir())]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting_inputs(targets: Iterable[PathLike], inputs: Iterable[Optional[PathLike]],
                              what: str = "output") -> None:
    """One-line error when one of the files a run writes (or removes) is one of its inputs."""
    targets = [Path(t) for t in targets]
    for source in inputs:
        if source is None:
            continue
        source = Path(source)
        for target in targets:
            if _same_file(source, target) or source.resolve() == target.resolve():
                raise OutputFolderError(f"{what} {target} would overwrite the input {source}; "
                                        "write the output somewhere else")


def _inputs_inside(folder: Path, patterns: Sequence[str], inputs: Iterable[Optional[PathLike]]) -> None:
    root = folder.resolve()
    for source in inputs:
        if source is None:
            continue
        resolved = Path(source).resolve()
        if resolved == root:
            raise OutputFolderError(f"the output folder {folder} is also the input {source}; choose another --out")
        try:
            relative = resolved.relative_to(root).as_posix()
        except ValueError:
            continue
        if matches(relative, patterns):
            raise OutputFolderError(f"{source} is an input of this run but also one of the files it writes in "
                                    f"{folder}; copy it elsewhere or choose another --out")


def plan_output_folder(folder: PathLike, *, patterns: Sequence[str], overwrite: bool, resume: bool,
                       resumable: bool, inputs: Iterable[Optional[PathLike]] = (),
                       what: str = "output folder") -> str:
    """How a run uses `folder` (:data:`NEW`, :data:`RESUME` or :data:`REPLACE`); changes nothing.

    ``resumable``: the folder holds the saved state a resume continues from. Refuses (one line)
    a non-empty folder without ``overwrite``, ``resume`` without resumable state in a non-empty
    folder, and any input the run would overwrite or remove (a file matching ``patterns``).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{what} {folder} is a file, not a folder")
    inputs = list(inputs)
    if resume and resumable:
        _inputs_inside(folder, patterns, inputs)
        return RESUME
    if not _entries(folder):
        _inputs_inside(folder, patterns, inputs)
        return NEW
    if resume and not overwrite:
        raise OutputFolderError(f"--resume: {folder} holds no resumable run; use --overwrite to start over there, "
                                "or a new folder")
    if not overwrite:
        raise OutputFolderError(f"{what} {folder} is not empty (use --overwrite, or --resume to continue)")
    _inputs_inside(folder, patterns, inputs)
    return REPLACE


def remove_outputs(folder: PathLike, patterns: Sequence[str]) -> List[str]:
    """Remove the files below `folder` that match `patterns` (and folders this empties);
    everything else stays. Returns the removed files' relative paths."""
    folder = Path(folder)
    removed, parents = [], set()
    for path in list(_files(folder)):
        relative = _relative(path, folder)
        if matches(relative, patterns):
            path.unlink(missing_ok=True)
            removed.append(relative)
            parents.update(p for p in path.relative_to(folder).parents if str(p) != ".")
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        with_folder = folder / parent
        if with_folder.is_dir() and not with_folder.is_symlink() and not any(with_folder.iterdir()):
            with_folder.rmdir()
    return removed


def open_output_folder(folder: PathLike, plan: str, patterns: Sequence[str]) -> None:
    """Make `folder` ready for a run planned by :func:`plan_output_folder`: create it, remove
    stale temporary files and, for :data:`REPLACE`, the earlier run's files (only those)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)
    if plan == REPLACE:
        remove_outputs(folder, patterns)


def remove_if_empty(folder: PathLike) -> None:
    """Remove `folder` when it holds nothing (e.g. a run that created it failed early)."""
    folder = Path(folder)
    try:
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass
