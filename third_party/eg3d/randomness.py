"""Where a synthesis call gets its random numbers, and how to draw them ahead of time.

Every random draw of the generator (backbone noise, stratified jitter, importance-sampling
uniforms, density noise) goes through :func:`randn` / :func:`rand` with a `generator`
argument that is one of:

* ``None``: torch's global RNG (upstream's behaviour);
* a ``torch.Generator``: draws from it, in the order the call needs them;
* a :class:`DrawRecorder`: draws from its generator like the above and notes each draw's
  kind, shape and dtype — the *plan* of the call;
* a :class:`DrawReplay`: hands out tensors drawn beforehand (by :func:`draw_ahead` from a
  plan) instead of drawing.

A call replayed from tensors that :func:`draw_ahead` drew from a generator in the same state
gets the very same numbers as the call drawing from that generator itself: the draws are the
same calls on the same generator in the same order, only made earlier. That makes the call free
of random-number generation, so it can run inside a CUDA graph or a compiled region, with the
draws made outside it into static buffers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch

KINDS = ("normal", "uniform")


@dataclass(frozen=True)
class PlannedDraw:
    """One draw of a call: 'normal' (randn) or 'uniform' (rand), its shape and dtype."""

    kind: str
    shape: tuple
    dtype: torch.dtype


class DrawRecorder:
    """Draws from `generator` (None: the global RNG) and records the plan of the draws."""

    def __init__(self, generator: Optional[torch.Generator] = None):
        self.generator = generator
        self.plan: List[PlannedDraw] = []

    def draw(self, kind: str, shape, device, dtype) -> torch.Tensor:
        self.plan.append(PlannedDraw(kind, tuple(int(s) for s in shape), dtype))
        return _torch_draw(kind, shape, self.generator, device, dtype)


class DrawReplay:
    """Hands out pre-drawn tensors in order; any other request than the planned one is an error."""

    def __init__(self, tensors: Sequence[torch.Tensor], plan: Sequence[PlannedDraw]):
        if len(tensors) != len(plan):
            raise ValueError(f"{len(tensors)} tensors for a plan of {len(plan)} draws")
        self.tensors = list(tensors)
        self.plan = list(plan)
        self.position = 0

    def draw(self, kind: str, shape, device, dtype) -> torch.Tensor:
        if self.position >= len(self.plan):
            raise RuntimeError(f"the call asked for more random draws than the {len(self.plan)} planned")
        expected = self.plan[self.position]
        asked = PlannedDraw(kind, tuple(int(s) for s in shape), dtype)
        if asked != expected:
            raise RuntimeError(f"random draw {self.position}: the call asked for {asked}, the plan has {expected}")
        tensor = self.tensors[self.position]
        self.position += 1
        return tensor

    def finish(self) -> None:
        """Check that the call used every pre-drawn tensor."""
        if self.position != len(self.plan):
            raise RuntimeError(f"the call used {self.position} of {len(self.plan)} pre-drawn random tensors")


Source = Union[None, torch.Generator, DrawRecorder, DrawReplay]


def _torch_draw(kind: str, shape, generator: Optional[torch.Generator], device, dtype, out=None) -> torch.Tensor:
    fn = {"normal": torch.randn, "uniform": torch.rand}[kind]
    if out is not None:
        return fn(tuple(shape), generator=generator, out=out)
    return fn(tuple(shape), generator=generator, device=device, dtype=dtype)


def draw(kind: str, shape, generator: Source = None, device=None, dtype=None) -> torch.Tensor:
    """A tensor of standard normal ('normal') or U[0,1) ('uniform') numbers from `generator`
    (see the module doc for what it may be)."""
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    if isinstance(generator, (DrawRecorder, DrawReplay)):
        return generator.draw(kind, shape, device, dtype)
    return _torch_draw(kind, shape, generator, device, dtype)


def randn(shape, generator: Source = None, device=None, dtype=None) -> torch.Tensor:
    """`torch.randn` through a draw source."""
    return draw("normal", shape, generator, device, dtype)


def rand(shape, generator: Source = None, device=None, dtype=None) -> torch.Tensor:
    """`torch.rand` through a draw source."""
    return draw("uniform", shape, generator, device, dtype)


def draw_ahead(plan: Sequence[PlannedDraw], generator: Optional[torch.Generator], device,
               out: Optional[Sequence[torch.Tensor]] = None) -> List[torch.Tensor]:
    """Make the draws of `plan` from `generator`, in order, on `device` (into the tensors `out`
    when given: static buffers keep their storage). Returns the tensors."""
    if out is not None and len(out) != len(plan):
        raise ValueError(f"{len(out)} buffers for a plan of {len(plan)} draws")
    return [_torch_draw(p.kind, p.shape, generator, device, p.dtype, out=None if out is None else out[i])
            for i, p in enumerate(plan)]
