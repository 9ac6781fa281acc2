"""SHA-256 of files, streamed."""
from __future__ import annotations

import hashlib
import os
from typing import Union

_CHUNK = 1 << 20


def sha256_file(path: Union[str, "os.PathLike[str]"]) -> str:
    """Hex SHA-256 of the file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
