"""The toy demo's picture: the erased head before / after / target, then other heads before / after,
each row labelled, every column one evaluation yaw."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch

LABEL_WIDTH = 170
FONT_SIZE = 16
TILE = 128
OTHERS_SEED = 31337


def _label(text: str, height: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (LABEL_WIDTH, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1: the small bitmap font
        font = ImageFont.load_default()
    for i, line in enumerate(text.split("\n")):
        draw.text((8, height // 2 - FONT_SIZE + (FONT_SIZE + 4) * i), line, fill=(20, 20, 20), font=font)
    return np.asarray(img)


@torch.no_grad()
def toy_grid(G_src, G, w_u: torch.Tensor, w_t: torch.Tensor, camera, views: int, others: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` grid (see module doc); ``others`` random heads (seeded) below the erased one."""
    from guide.cameras import conditioning_params, view_yaws
    from guide.render import grid, render_views

    yaws = view_yaws(views, camera.yaw_range)
    rows: List[Tuple[str, torch.Tensor]] = [
        ("erased head\nbefore", render_views(G_src, w_u, camera, yaws)),
        ("erased head\nafter", render_views(G, w_u, camera, yaws)),
        ("target (UFO)\nsource generator", render_views(G_src, w_t, camera, yaws)),
    ]
    z = torch.randn(others, G_src.z_dim, generator=torch.Generator().manual_seed(OTHERS_SEED))
    w_o = G_src.mapping(z, conditioning_params().expand(others, -1))
    for k in range(others):
        rows.append((f"other head {k + 1}\nbefore", render_views(G_src, w_o[k:k + 1], camera, yaws)))
        rows.append((f"other head {k + 1}\nafter", render_views(G, w_o[k:k + 1], camera, yaws)))
    pictures = [grid([images], size=TILE) for _, images in rows]
    return np.concatenate([np.concatenate([_label(name, TILE), pic], axis=1) for (name, _), pic in zip(rows, pictures)])
