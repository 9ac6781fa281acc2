"""Multi-view renders and image grids of any generator (used by erase, render and eval)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from guide.cameras import pose_params, view_yaws
from guide.config import CameraConfig


def camera_for(camera: CameraConfig, yaw: float = 0.0, pitch: Optional[float] = None, device="cpu") -> torch.Tensor:
    """[1,25] camera at a yaw/pitch offset from the front (pitch default: camera.pitch_offset).

    Computed on the CPU with a scratch RNG, so the global RNG is not consumed (the official
    sampler draws from it even with zero spread), then moved to `device`."""
    pitch = camera.pitch_offset if pitch is None else pitch
    return pose_params(yaw, pitch, pivot=camera.pivot, radius=camera.radius, fov=camera.fov_degrees,
                       generator=torch.Generator()).to(device)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N,3,H,W] in [-1,1] -> uint8 [N,H,W,3] (GUIDE's x·127.5+128, clamped)."""
    return (images.detach().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def render_generator(seed: int, *stream: int, device="cpu") -> torch.Generator:
    """A torch.Generator on `device` for random-noise renders, seeded from (seed, *stream)."""
    state = np.random.SeedSequence([int(seed), *map(int, stream)]).generate_state(1)[0]
    return torch.Generator(torch.device(device)).manual_seed(int(state))


@torch.no_grad()
def render_views(
    G,
    ws: torch.Tensor,
    camera: CameraConfig,
    yaws: Optional[Sequence[float]] = None,
    deterministic: bool = True,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Render latents [N,num_ws,w_dim] from each yaw (default: the 11 evaluation yaws) ->
    [N*V,3,H,W], latent-major (one latent: [V,3,H,W]); the N latents share each forward pass.
    Deterministic by default (constant noise, fixed sampling) so renders of two generators are
    comparable pixel for pixel; otherwise random noise and ray jitter, drawn from `generator`
    (torch's global RNG if None), as the reference renders."""
    yaws = view_yaws(yaw_range=camera.yaw_range) if yaws is None else list(yaws)
    was_training = G.training
    G.eval()
    out = []
    for yaw in yaws:
        c = camera_for(camera, yaw, device=ws.device).repeat(ws.shape[0], 1)
        kw = dict(noise_mode="const", deterministic=True) if deterministic else \
            dict(noise_mode="random", generator=generator)
        out.append(G.synthesis(ws, c, **kw)["image"])
    G.train(was_training)
    return torch.stack(out, dim=1).flatten(0, 1)


def save_images(images: torch.Tensor, folder: Path, prefix: str) -> List[Path]:
    """Write each image as folder/prefix_XX.png (atomically); returns the paths."""
    from guide.io.atomic import write_bytes_atomic

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, array in enumerate(to_uint8(images)):
        path = folder / f"{prefix}_{i:02d}.png"
        write_bytes_atomic(path, png_bytes(array))
        paths.append(path)
    return paths


def png_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def grid(rows: Sequence[torch.Tensor], size: Optional[int] = 256) -> np.ndarray:
    """Stack rows of images ([V,3,H,W] each, same V) into one uint8 grid, each tile resized."""
    tiles = []
    for row in rows:
        images = row
        if size is not None and images.shape[-1] != size:
            images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                                     align_corners=False, antialias=True)
        tiles.append(np.concatenate(list(to_uint8(images)), axis=1))
    return np.concatenate(tiles, axis=0)
