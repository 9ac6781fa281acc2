"""Low-level ops of the StyleGAN2/EG3D generator.

Each op has a plain PyTorch reference implementation (used on CPU and as the
fallback everywhere) and, on CUDA, an optional compiled kernel behind the
same function (see `eg3d.ops.cuda_kernels`).
"""
from .bias_act import ACTIVATIONS, bias_act
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "downsample2d",
    "filter2d",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]
