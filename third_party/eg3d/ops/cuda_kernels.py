"""Compiled CUDA kernels for bias_act and upfirdn2d (placeholder: not built yet)."""
from __future__ import annotations


def available(required: bool = False) -> bool:
    """Whether the compiled kernels can be used; raise if `required` and they cannot."""
    if required:
        raise RuntimeError("the eg3d CUDA kernels are not available")
    return False
