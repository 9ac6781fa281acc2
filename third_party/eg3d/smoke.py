"""Smoke run: build a tiny EG3D generator with random weights and render three views.

    python -m eg3d.smoke [--out eg3d_smoke.png] [--seed 0]

The weights are untrained, so the picture is noise-like colour; the run shows that the
whole generator (mapping, backbone, volume rendering, super-resolution) works here.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from PIL import Image

from . import configs
from .camera import FOV_to_intrinsics, LookAtPoseSampler, camera_params
from .triplane import TriPlaneGenerator


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="eg3d_smoke.png", help="where to write the image grid")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    start = time.time()
    G = TriPlaneGenerator(**configs.tiny()).eval()
    G.neural_rendering_resolution = 32
    rng = torch.Generator().manual_seed(args.seed)
    z = torch.randn(1, G.z_dim, generator=rng)
    intrinsics = FOV_to_intrinsics(18.837)
    images = []
    with torch.no_grad():
        front = LookAtPoseSampler.sample(math.pi / 2, math.pi / 2, [0, 0, 0.2], radius=2.7, generator=rng)
        ws = G.mapping(z, camera_params(front, intrinsics))
        for yaw in (-0.4, 0.0, 0.4):
            cam = LookAtPoseSampler.sample(math.pi / 2 + yaw, math.pi / 2 - 0.2, [0, 0, 0.2], radius=2.7,
                                           generator=rng)
            out = G.synthesis(ws, camera_params(cam, intrinsics), noise_mode="const", deterministic=True)
            images.append(out["image"][0])
    grid = torch.cat(images, dim=2)
    grid = (grid.permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    Image.fromarray(np.ascontiguousarray(grid)).save(args.out)
    print(f"eg3d smoke run: tiny generator with RANDOM weights ({sum(p.numel() for p in G.parameters()):,} "
          f"parameters), 3 views of one latent rendered in {time.time() - start:.1f} s -> {args.out}")
    print("The weights are untrained, so the image shows no face; it proves the pipeline runs.")


if __name__ == "__main__":
    main()
