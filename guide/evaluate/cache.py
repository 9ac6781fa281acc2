"""A folder of cached Inception features of generator samples, and generator fingerprints.

An entry is keyed by the SHA-256 of (generator fingerprint, sample settings without the count,
feature extractor) and holds ``<key>.npy`` (features ``[M, 2048]`` of samples 0..M-1) beside
``<key>.json`` (what produced them, for people). Samples are prefix-stable (see
:mod:`guide.evaluate.sampling`), so an entry with M >= N answers a request for N samples and a
shorter one is extended. The pretrained generator's entry is shared by every erasure made from
it. Files are written atomically; an unreadable or inconsistent entry is ignored and rebuilt.

The generator fingerprint is a SHA-256 over the class name, ``rendering_kwargs``,
``neural_rendering_resolution`` and every state_dict tensor (name, dtype, shape, bytes): the same
weights give the same key whether they came from an EG3D ``.pkl`` or our safetensors files.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np
import torch

DEFAULT_CACHE = Path("~/.cache/guide/fid")
CACHE_ENV = "GUIDE_FID_CACHE"
KEY_VERSION = 1

PathLike = Union[str, "os.PathLike[str]"]


def resolve_cache_dir(value: Optional[PathLike] = None) -> Path:
    """``value`` if given, else ``$GUIDE_FID_CACHE``, else ``~/.cache/guide/fid`` (absolute)."""
    if value is not None and str(value) != "":
        chosen = Path(value)
    elif os.environ.get(CACHE_ENV):
        chosen = Path(os.environ[CACHE_ENV])
    else:
        chosen = DEFAULT_CACHE
    return chosen.expanduser().absolute()


def generator_fingerprint(G: torch.nn.Module) -> str:
    """Hex SHA-256 of what decides a generator's images (see module docstring)."""
    digest = hashlib.sha256()
    header = {
        "class": type(G).__name__,
        "rendering_kwargs": getattr(G, "rendering_kwargs", None),
        "neural_rendering_resolution": getattr(G, "neural_rendering_resolution", None),
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in sorted(G.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_key(fields: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``fields`` (plus the key-format version)."""
    text = json.dumps({"version": KEY_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class FeatureCache:
    """Features on disk under ``root`` (created on first store). ``root=None`` disables caching."""

    def __init__(self, root: Optional[PathLike]) -> None:
        self.root = None if root is None else Path(root)

    def _paths(self, key: str):
        return self.root / f"{key}.npy", self.root / f"{key}.json"

    def load(self, key: str, dims: int) -> Optional[np.ndarray]:
        """Cached features ``[M, dims]`` for ``key``, or None (absent, unreadable or wrong shape)."""
        if self.root is None:
            return None
        path, _ = self._paths(key)
        if not path.is_file():
            return None
        try:
            feats = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if feats.ndim != 2 or feats.shape[1] != dims or not np.isfinite(feats).all():
            return None
        return feats

    def store(self, key: str, features: np.ndarray, about: Dict[str, Any]) -> Optional[Path]:
        """Write ``features`` and a JSON description atomically; returns the .npy path."""
        if self.root is None:
            return None
        from guide.io.atomic import write_bytes_atomic, write_text_atomic

        self.root.mkdir(parents=True, exist_ok=True)
        path, meta = self._paths(key)
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(features, dtype=np.float32), allow_pickle=False)
        write_bytes_atomic(path, buffer.getvalue())
        write_text_atomic(meta, json.dumps({**about, "count": int(features.shape[0])}, indent=2,
                                           default=str) + "\n")
        return path
