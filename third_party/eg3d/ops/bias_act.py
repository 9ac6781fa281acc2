"""Fused bias + activation + gain + clamp, as used by every StyleGAN2 layer.

`bias_act(x, b, act='lrelu')` computes `clamp(act(x + b) * gain, -clamp, clamp)`
with the bias broadcast along dimension `dim`. The defaults of `alpha` and
`gain` depend on the activation (lrelu: alpha 0.2, gain sqrt(2)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    """An activation with its default slope parameter and output gain."""

    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float
    cuda_id: int  # index used by the compiled kernel


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0, 1),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2), 2),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2), 3),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0, 4),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0, 5),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0, 6),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0, 7),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0, 8),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2), 9),
}


def resolve_params(act: str, alpha: Optional[float], gain: Optional[float], clamp: Optional[float]):
    """Fill in the activation's defaults; clamp None (or negative) means no clamping."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)
    return spec, alpha, gain, clamp


def bias_act_reference(
    x: torch.Tensor,
    b: Optional[torch.Tensor] = None,
    dim: int = 1,
    act: str = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
) -> torch.Tensor:
    """Plain PyTorch bias + activation (autograd provides the gradients)."""
    spec, alpha, gain, clamp = resolve_params(act, alpha, gain, clamp)
    if b is not None:
        if x.ndim == 0 or not -x.ndim <= dim < x.ndim or b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {tuple(b.shape)} does not match dimension {dim} of x {tuple(x.shape)}")
        dim = dim % x.ndim  # a negative dim would never match i in the reshape below
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def bias_act(
    x: torch.Tensor,
    b: Optional[torch.Tensor] = None,
    dim: int = 1,
    act: str = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
    impl: str = "auto",
) -> torch.Tensor:
    """Add bias `b` along `dim`, apply `act`, scale by `gain`, clamp to ±`clamp`.

    impl: 'auto' uses the compiled CUDA kernel for CUDA tensors when it is
    available and the PyTorch reference otherwise (always the reference while
    torch.compile traces, so the compiler can fuse it); 'ref' forces the
    reference; 'cuda' requires the kernel.
    """
    # Inside torch.compile regions the reference ops are traced and fused by the compiler instead.
    if impl != "ref" and x.is_cuda and not torch.compiler.is_compiling():
        from . import cuda_kernels

        if cuda_kernels.available(required=(impl == "cuda")):
            return cuda_kernels.bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    return bias_act_reference(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
