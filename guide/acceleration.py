"""Opt-in speed settings for the LTU step: torch.compile, the channels_last memory format, and
the runner of the CUDA-graph step.

Both leave the objective unchanged; they only reorder floating-point work (differences at the
level of fp32 rounding, checked by tests/guide/test_acceleration.py). They are off by default
until a GPU benchmark shows they help: `guide bench --compile --channels-last` measures them.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import nn

from guide.errors import GuideError

# Each SynthesisLayer / block shape is its own compiled graph: raise dynamo's per-function
# recompile limit (default 8) so the whole backbone compiles instead of falling back to eager.
RECOMPILE_LIMIT = 64


def _raise_recompile_limit(limit: int = RECOMPILE_LIMIT) -> None:
    import torch._dynamo

    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):  # renamed in torch 2.6
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), limit))
            return


def compile_generator(G: nn.Module, mode: Optional[str] = None, backend: str = "inductor") -> nn.Module:
    """Compile G's backbone synthesis network, renderer and super-resolution in place
    (`nn.Module.compile`; state_dict keys are unchanged), with static shapes. Returns G.

    The shapes of an LTU step never change, so dynamic shapes would only cost compile time.
    The trainer runs its first step (which draws random numbers inline from a torch.Generator,
    a graph break at every draw) eagerly; from the second step on its renders take pre-drawn
    numbers and each compiled module is one graph (tests/guide/test_acceleration.py counts them).
    `backend`: torch.compile's ("eager" only traces: tests)."""
    parts = [G.backbone.synthesis, G.renderer, G.superresolution]
    if not all(hasattr(part, "compile") for part in parts):
        raise GuideError(f"compiling needs torch >= 2.2 (nn.Module.compile); this is torch {torch.__version__}")
    _raise_recompile_limit()
    for part in parts:
        part.compile(mode=mode, backend=backend, dynamic=False)
    return G


def to_channels_last(*modules: Optional[nn.Module]) -> None:
    """Channels-last (NHWC) in place for these modules (None is skipped): 4-D weights stored
    NHWC, and every EG3D synthesis block inside (backbone and super-resolution) runs on NHWC
    features in any precision, so cuDNN's NHWC kernels need no layout conversions."""
    from eg3d.synthesis import set_memory_format

    for module in modules:
        if module is not None:
            set_memory_format(module, torch.channels_last)


class CudaGraphRunner:
    """Runs a training step's work as a CUDA graph, on a side stream of its own.

    `capture(fn)` records fn once — nothing runs then — and returns fn's outputs: static tensors
    that every `replay()` rewrites. Everything else the caller does for a step (staging inputs,
    drawing random numbers into the graph's buffers, eager warm-up steps) goes inside
    `with runner.streaming():`, so that it is ordered with the replays.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(self.device)
        self.graph = None

    @property
    def captured(self) -> bool:
        return self.graph is not None

    @contextlib.contextmanager
    def streaming(self):
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            yield
        current.wait_stream(self.stream)

    def capture(self, fn):
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            outputs = fn()
        return outputs

    def replay(self) -> None:
        self.graph.replay()

    def reset(self) -> None:
        """Forget the graph (e.g. after the tensors it reads were replaced); the next step captures anew."""
        self.graph = None
