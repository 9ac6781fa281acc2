"""The one place that turns a --device string into a torch.device (or a one-line error)."""
from __future__ import annotations

import torch

from guide.errors import GuideError

AUTO = "auto"
DEVICE_HELP = "auto (CUDA when available, else the CPU), cpu, cuda or cuda:N."


def resolve_device(device) -> torch.device:
    """torch.device for `device`: ``"auto"`` (the default of every command and job file) is CUDA
    when available, else the CPU; GuideError for an unknown name or CUDA requested but absent."""
    if device is None or (isinstance(device, str) and device.strip().lower() == AUTO):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise GuideError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GuideError(f"--device {device} was requested but CUDA is not available on this machine")
    return resolved


def device_generator(device, seed: int) -> torch.Generator:
    """A seeded torch.Generator that draws on `device`. The meta device (shapes without numbers,
    used to check a step's host traffic on a CPU-only machine) has no generators of its own and
    takes a CPU one: its draws hold no numbers anyway."""
    device = torch.device(device)
    return torch.Generator(device="cpu" if device.type == "meta" else device).manual_seed(seed)
