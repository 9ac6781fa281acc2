"""What a batch worker needs: the source generator and the loss networks, built from the job.

In-process runs may inject ready-made :class:`Resources` (tests, notebooks); worker processes
(one per device, or Ray tasks) build them from the job once per process and device.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from guide.batch.schema import BatchJob
from guide.errors import GuideError

DEFAULT_GENERATOR = "ffhqrebalanced512-128.pkl"
TINY_NEURAL_RENDERING_RESOLUTION = 32


@dataclass
class Resources:
    """The source generator (on its device) and the LTU loss networks."""

    G_src: torch.nn.Module
    networks: object  # guide.erase.Networks
    generator_path: Optional[Path] = None  # None for a built-in generator
    checkpoint_dir: Optional[Path] = None


def checkpoint_dir_for(job: BatchJob) -> Path:
    from guide.paths import resolve_checkpoint_dir

    return resolve_checkpoint_dir(job.checkpoints)


def generator_path_for(job: BatchJob) -> Optional[Path]:
    """The source generator file (None for `builtin:tiny`); GuideError when it is missing."""
    if job.generator is not None and job.generator.startswith("builtin:"):
        return None
    if job.generator is None:
        from guide.checkpoints import require_checkpoint

        return Path(require_checkpoint(DEFAULT_GENERATOR, checkpoint_dir_for(job)))
    path = Path(job.generator)
    if not path.exists():
        raise GuideError(f"generator file not found: {path} (job option generator)")
    return path


BUILTIN_SEED = 0


def builtin_generator(name: str, seed: int = BUILTIN_SEED) -> torch.nn.Module:
    """`builtin:toy`: the toy world's trained generator of procedural heads (guide.toy, demos).
    `builtin:tiny`: EG3D's code paths with a narrow random network, the same one every time
    (weights from `seed`): for tests only -- it renders coloured noise, not faces."""
    import eg3d
    from eg3d import configs

    if name == "builtin:toy":
        from guide.toy.world import load_toy_generator

        return load_toy_generator()
    if name != "builtin:tiny":
        raise GuideError(f"unknown built-in generator {name!r}")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    G = eg3d.TriPlaneGenerator(**configs.tiny()).eval().requires_grad_(False)
    torch.random.set_rng_state(state)
    G.neural_rendering_resolution = TINY_NEURAL_RENDERING_RESOLUTION
    return G


def check_device(device: str) -> torch.device:
    """The job's device (one-line error when CUDA is requested but absent)."""
    from guide.devices import resolve_device

    return resolve_device(device)


def build_resources(job: BatchJob, device: str) -> Resources:
    """Load the job's generator and networks onto `device`."""
    from guide.erase import load_networks
    from guide.io import load_any_generator

    dev = check_device(device)
    checkpoint_dir = checkpoint_dir_for(job)
    path = generator_path_for(job)
    G = builtin_generator(job.generator).to(dev) if path is None else load_any_generator(path, device=dev)
    if job.networks == "toy":
        from guide.toy.world import toy_networks

        networks = toy_networks(device=dev)
    else:
        networks = load_networks(checkpoint_dir, dev, random_weights=job.networks == "random")
    return Resources(G, networks, path, checkpoint_dir)


_CACHE: Dict[Tuple[str, str, str, str], Resources] = {}


def cached_resources(job: BatchJob, device: str) -> Resources:
    """build_resources, once per process for the same generator, networks and device."""
    key = (str(job.generator), job.networks, str(job.checkpoints), device)
    if key not in _CACHE:
        _CACHE.clear()  # one set per worker process
        _CACHE[key] = build_resources(job, device)
    return _CACHE[key]
