"""Traffic between the host and the device during training: one staged copy per step, and a
counter that proves it.

`StagedTransfer` sends a fixed set of small host tensors (a step's camera and latent draws) to
the device in ONE copy: packed into a host buffer (pinned on CUDA, so the copy is asynchronous
and the host does not wait), copied with `non_blocking=True` into a device buffer that keeps
its storage from call to call (a CUDA graph reads it in place).

`TransferCounter` is a TorchDispatchMode that counts, while active, every host→device copy
(pinned or pageable) and every operation that makes the host wait for the device (reading a
value with `.item()`/`float()`, copying to the host, data-dependent shapes such as `nonzero`).
On a CUDA device it counts real transfers. On the `meta` device (shapes without data, which
behaves like an accelerator for placement: a CPU tensor must be copied to it) it lets a CPU-only
test check the same property; reading a value there raises, so a sync cannot go unnoticed.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Dict, Mapping, Sequence

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Operations whose result the host must wait for (values read back or data-dependent shapes).
_SYNC_OPS = {
    aten._local_scalar_dense.default,  # .item(), float(), bool(), int()
    aten.nonzero.default,
    aten.masked_select.default,
    aten.is_nonzero.default,
    aten.equal.default,
    aten._linalg_check_errors.default,  # torch.linalg.inv & co. read the solver's error flags
}


class StagedTransfer:
    """Named float32 host tensors -> static device tensors, in one (non-blocking) copy."""

    def __init__(self, shapes: Mapping[str, Sequence[int]], device):
        self.device = torch.device(device)
        self.shapes = {name: tuple(int(s) for s in shape) for name, shape in shapes.items()}
        sizes = {name: math.prod(shape) for name, shape in self.shapes.items()}
        total = max(1, sum(sizes.values()))
        pinned = self.device.type == "cuda"
        self.host = torch.empty(total, dtype=torch.float32, pin_memory=pinned)
        self.buffer = torch.empty(total, dtype=torch.float32, device=self.device)
        self._slices: Dict[str, slice] = {}
        offset = 0
        for name, size in sizes.items():
            self._slices[name] = slice(offset, offset + size)
            offset += size
        self.views = {name: self.buffer[self._slices[name]].view(self.shapes[name]) for name in self.shapes}
        self._copied = None  # CUDA event: the previous copy has read the host buffer

    def __call__(self, **tensors: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Copy these tensors (exactly the names and shapes given at construction) to the
        device; returns the device views (the same tensors at every call)."""
        if set(tensors) != set(self.shapes):
            raise ValueError(f"expected tensors {sorted(self.shapes)}, got {sorted(tensors)}")
        if self._copied is not None:
            self._copied.synchronize()  # waits for the previous step's copy only, not for its work
        for name, tensor in tensors.items():
            if tuple(tensor.shape) != self.shapes[name]:
                raise ValueError(f"{name}: expected shape {self.shapes[name]}, got {tuple(tensor.shape)}")
            self.host[self._slices[name]].copy_(tensor.reshape(-1))
        if self.device.type == "cpu":
            self.buffer.copy_(self.host)
        else:
            self.buffer.copy_(self.host, non_blocking=True)
        if self.device.type == "cuda":
            self._copied = torch.cuda.Event()
            self._copied.record()
        return self.views


def _devices(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value.device]
    if isinstance(value, (list, tuple)):
        return [d for v in value for d in _devices(v)]
    return []


def _has_mask_index(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


class _CopyAndSyncMode(TorchDispatchMode):
    """The aten-level half of TransferCounter: copies between devices and host waits."""

    def __init__(self, note):
        super().__init__()
        self.note = note

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        on_device = any(d.type != "cpu" for d in _devices(args))
        if on_device and (func in _SYNC_OPS or (func is aten.index.Tensor and _has_mask_index(args[1]))
                          or (func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is None)):
            self.note("sync", func)
        elif func in (aten._to_copy.default, aten.copy_.default):
            src = args[1] if func is aten.copy_.default else args[0]
            dst = args[0].device if func is aten.copy_.default else kwargs.get("device") or src.device
            dst = torch.device(dst)
            if src.device.type == "cpu" and dst.type != "cpu":
                self.note("h2d_pinned" if src.is_pinned() else "h2d_pageable", func)
            elif src.device.type != "cpu" and dst.type == "cpu":
                self.note("d2h", func)
        return func(*args, **kwargs)


# Functions that build a tensor from Python data: where the data sits in args, where the device may.
_DATA_CONSTRUCTORS = {torch.tensor: (0, None), torch.as_tensor: (0, 2), torch.asarray: (0, None),
                      torch.Tensor.new_tensor: (1, None)}


class _DataConstructorMode(TorchFunctionMode):
    """The function-level half: tensors built from Python data straight on a device
    (`torch.tensor(data, device=...)`), which aten never sees as a copy."""

    def __init__(self, note):
        super().__init__()
        self.note = note

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _DATA_CONSTRUCTORS:
            data_at, device_at = _DATA_CONSTRUCTORS[func]
            data = args[data_at] if len(args) > data_at else kwargs.get("data")
            device = kwargs.get("device")
            if device is None and device_at is not None and len(args) > device_at:
                device = args[device_at]
            if device is None and func is torch.Tensor.new_tensor:
                device = args[0].device
            if not isinstance(data, torch.Tensor) and device is not None and torch.device(device).type != "cpu":
                self.note("h2d_pageable", func)
        return func(*args, **kwargs)


class TransferCounter:
    """Counts, while active (`with TransferCounter() as counter:`), host→device copies
    ('h2d_pinned', 'h2d_pageable'), device→host copies ('d2h') and host waits for values or
    data-dependent shapes ('sync'); `ops` says which operations they were."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.ops: Counter = Counter()
        self._modes = (_DataConstructorMode(self._note), _CopyAndSyncMode(self._note))

    @property
    def h2d(self) -> int:
        return self.counts["h2d_pinned"] + self.counts["h2d_pageable"]

    @property
    def syncs(self) -> int:
        return self.counts["sync"] + self.counts["d2h"]

    def _note(self, kind: str, func) -> None:
        self.counts[kind] += 1
        self.ops[f"{kind}:{getattr(func, '__name__', func)}"] += 1

    def __enter__(self) -> "TransferCounter":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
