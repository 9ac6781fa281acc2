"""The leakage-radius curve: how far around a latent the identity is gone (or kept).

For a latent w (the erased w_u, or a retained identity), K unit directions u_k and radii r, the
point at radius r is the mean over k and over the evaluation views v of
``sim(G(w + r·u_k) from view v, G_src(w) from view v)`` -- CurricularFace similarity, the pairing
of the ID metric. With ``G`` the unlearned generator this is the leakage curve; with ``G`` the
source it is the ceiling (1 at r = 0, falling as the latent leaves the person). At r = 0 the
unlearned curve of w_u *is* the evaluation's ID (same renders, same pairs), and that of a
retained identity its ID_others.

Unit directions: norm 1 over the whole ``[num_ws, w_dim]`` tensor, the norm the adjacency loss
uses for its offsets α ≤ 15. ``mapped`` (default): towards random mapped latents, exactly as the
adjacency loss draws them (z ~ N(0, I), mapping with the frontal camera, psi 1, cutoff 14);
``isotropic``: Gaussian in W+, which also leaves the mapping network's range. The same K
directions are used at every radius, so the curve is paired across radii.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch

from guide.audit.scoring import Embedder, as_list, finite_mean, similarities
from guide.config import CameraConfig, LTUConfig

DIRECTION_KINDS = ("mapped", "isotropic")


def seeded_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU torch.Generator for one purpose of the audit (an independent stream per ``keys``)."""
    state = np.random.SeedSequence([int(seed), *[int(k) for k in keys]]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def unit_directions(G_src, w: torch.Tensor, count: int, kind: str, camera: CameraConfig,
                    generator: torch.Generator) -> torch.Tensor:
    """``count`` unit directions ``[count, num_ws, w_dim]`` around ``w`` ``[1, num_ws, w_dim]``."""
    if kind == "mapped":
        from guide.render import camera_for

        ltu = LTUConfig()
        z = torch.randn(count, G_src.z_dim, generator=generator).to(w.device)
        c = camera_for(camera, 0.0, 0.0, w.device).repeat(count, 1)
        with torch.no_grad():
            offsets = G_src.mapping(z, c, truncation_psi=ltu.truncation_psi,
                                    truncation_cutoff=ltu.truncation_cutoff) - w
    elif kind == "isotropic":
        offsets = torch.randn(count, *w.shape[1:], generator=generator).to(w.device)
    else:
        raise ValueError(f"unknown direction kind {kind!r}; expected one of {DIRECTION_KINDS}")
    return offsets / offsets.flatten(1).norm(dim=1).reshape(-1, 1, 1)


def _point(G, ws: torch.Tensor, reference: torch.Tensor, camera: CameraConfig, yaws: List[float],
           embed: Embedder, chunk: int) -> np.ndarray:
    """Similarities ``[len(ws), V]`` of G's renders of each latent to the reference embeddings ``[V, D]``."""
    from guide.render import render_views

    rows = []
    for start in range(0, ws.shape[0], max(1, chunk)):
        part = ws[start:start + chunk]
        emb = embed(render_views(G, part, camera, yaws)).reshape(part.shape[0], len(yaws), -1)
        rows.extend(similarities(e, reference) for e in emb)
    return np.stack(rows)


def leakage_curve(generators: dict, G_src, w: torch.Tensor, directions: torch.Tensor, radii: Sequence[float],
                  camera: CameraConfig, yaws: List[float], embed: Embedder, *, chunk: int = 4,
                  progress=None) -> dict:
    """Per generator (``{"unlearned": G, "source": G}``): per radius the mean, std, min and max over
    directions of the mean similarity over views, and every direction's value."""
    from guide.render import render_views

    reference = embed(render_views(G_src, w, camera, yaws))
    out = {}
    for name, G in generators.items():
        per_radius = []
        for r in radii:
            ws = w if float(r) == 0.0 else w + float(r) * directions  # r = 0: one point, as the ID renders
            sims = _point(G, ws, reference, camera, yaws, embed, chunk)
            per_radius.append([finite_mean(row) for row in sims])
            if progress is not None:
                progress(1)
        values = [np.array([v for v in row if v is not None], dtype=np.float64) for row in per_radius]
        out[name] = {"mean": [float(v.mean()) if v.size else None for v in values],
                     "std": [float(v.std()) if v.size else None for v in values],
                     "min": [float(v.min()) if v.size else None for v in values],
                     "max": [float(v.max()) if v.size else None for v in values],
                     "per_direction": [as_list([np.nan if v is None else v for v in row]) for row in per_radius]}
    return out


def mean_curve(curves: Sequence[dict], key: str) -> List[float]:
    """Radius-wise mean of several identities' ``key`` curves (``"mean"`` lists), skipping gaps."""
    if not curves:
        return []
    columns = zip(*[c[key] for c in curves])
    return [finite_mean([np.nan if v is None else v for v in column]) for column in columns]
