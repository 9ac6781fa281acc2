"""Clearing output folders (undoing a run that left something half-made)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable, Union


def clear_folder(folder: Union[str, Path], keep: Iterable[str] = ()) -> None:
    """Remove everything inside `folder` except the entries named in `keep`; the folder stays."""
    keep = set(keep)
    for child in Path(folder).iterdir():
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
