"""Lazy package exports: `import guide.io` stays cheap; names load their module on first use."""
from __future__ import annotations

import importlib
from typing import Callable, Mapping


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` resolving `exports[name]` (a submodule of `package`)."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(importlib.import_module(f".{exports[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
