"""Procedural 3D heads: the toy world's ground truth.

A head is a handful of analytic shapes (ellipsoids and spheres) described by an identity vector
``p`` of :data:`NUM_PARAMS` numbers in [0, 1] (see :data:`PARAMS`). :func:`render_heads` ray-casts
them from EG3D's 25-number cameras (rays from EG3D's own :class:`RaySampler`, so pixels line up
with the generator's renders) with Lambert shading on a flat background; images are ``[N,3,R,R]``
in [-1, 1] like the generator's. :func:`identity_of` is the fixed, seeded map from a generator
latent ``z`` to its "true" identity ``p``.
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

from eg3d.rendering.ray_sampler import RaySampler

PARAMS: Tuple[str, ...] = (
    "head_width", "head_height", "head_depth", "skin_tone", "hair_colour", "hair_extent",
    "eye_spacing", "eye_height", "eye_size", "eye_colour", "nose_size", "mouth_width", "ear_size",
)
NUM_PARAMS = len(PARAMS)
IDENTITY_SEED = 15  # seed of the fixed z -> p projection
BACKGROUND = (0.92, 0.92, 0.95)
LIGHT = (0.35, 0.55, 1.0)
AMBIENT = 0.38
SCALE = 0.8  # shapes are laid out for a head of height ~0.6 and then scaled to fit the view

_SKIN = ((0.97, 0.82, 0.70), (0.80, 0.58, 0.42), (0.42, 0.27, 0.17))
_HAIR = ((0.08, 0.06, 0.05), (0.42, 0.24, 0.10), (0.93, 0.78, 0.40), (0.72, 0.22, 0.08), (0.25, 0.30, 0.75))
_EYES = ((0.10, 0.35, 0.85), (0.10, 0.55, 0.20), (0.35, 0.18, 0.05))


def _lerp(a: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * a


def _palette(t: torch.Tensor, colours: Tuple[Tuple[float, float, float], ...]) -> torch.Tensor:
    """Piecewise-linear colour ramp: ``t`` [N] in [0,1] -> [N,3]."""
    table = torch.tensor(colours, dtype=t.dtype, device=t.device)
    x = t.clamp(0, 1) * (len(colours) - 1)
    i = x.floor().long().clamp(max=len(colours) - 2)
    f = (x - i).unsqueeze(-1)
    return table[i] * (1 - f) + table[i + 1] * f


def identity_of(z: torch.Tensor) -> torch.Tensor:
    """Fixed seeded map ``z [N,Z] -> p [N,13]`` in (0,1): ``z`` normalised to unit mean square (as
    the generator's mapping network does first, so p depends only on what the generator sees), a
    unit-column random projection, then the normal CDF: each number of ``p`` is close to uniform
    when ``z`` is standard normal."""
    g = torch.Generator().manual_seed(IDENTITY_SEED)
    a = torch.randn(z.shape[1], NUM_PARAMS, generator=g, dtype=torch.float64)
    a = a / a.norm(dim=0, keepdim=True)
    z = z.double().cpu()
    x = (z * z.square().mean(1, keepdim=True).clamp(min=1e-12).rsqrt()) @ a
    p = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    return p.to(dtype=torch.float32, device=z.device)


def head_parts(p: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Shapes and colours of heads ``p [N,13]``: centres, radii ``[N,3]`` and colours ``[N,3]``."""
    d = dict(zip(PARAMS, p.unbind(-1)))
    n = p.shape[0]
    zero = torch.zeros(n, dtype=p.dtype, device=p.device)
    rx, ry, rz = _lerp(d["head_width"], 0.22, 0.30), _lerp(d["head_height"], 0.27, 0.34), _lerp(d["head_depth"], 0.25, 0.30)
    head_c = torch.stack([zero, zero - 0.02, zero], -1)
    head_r = torch.stack([rx, ry, rz], -1)
    hair_extent = _lerp(d["hair_extent"], 0.0, 1.0)
    spacing, eye_y, eye_r = _lerp(d["eye_spacing"], 0.09, 0.13), _lerp(d["eye_height"], 0.0, 0.08), _lerp(d["eye_size"], 0.05, 0.075)

    def on_face(x: torch.Tensor, y: torch.Tensor, inset: torch.Tensor) -> torch.Tensor:
        """A point at (x, y) on the front of the head ellipsoid, pushed in by `inset`."""
        q = (1 - (x / rx) ** 2 - ((y - head_c[:, 1]) / ry) ** 2).clamp(min=0.05)
        return torch.stack([x, y, rz * q.sqrt() - inset], -1)

    nose = _lerp(d["nose_size"], 0.035, 0.065)
    mouth_w = _lerp(d["mouth_width"], 0.07, 0.13)
    ear = _lerp(d["ear_size"], 0.04, 0.08)
    parts = {
        "head": (head_c, head_r),
        "hair": (head_c + torch.stack([zero, 0.02 + 0.02 * hair_extent, zero - 0.02], -1),
                 head_r * torch.stack([1.08 + 0.06 * hair_extent, 1.02 + 0.04 * hair_extent, 1.1 + 0.04 * hair_extent], -1)),
        "eye_l": (on_face(-spacing, eye_y, eye_r * 0.55), torch.stack([eye_r, eye_r * 0.8, eye_r * 0.8], -1)),
        "eye_r": (on_face(spacing, eye_y, eye_r * 0.55), torch.stack([eye_r, eye_r * 0.8, eye_r * 0.8], -1)),
        "nose": (on_face(zero, zero - 0.06, nose * 0.35), torch.stack([nose * 0.6, nose, nose], -1)),
        "mouth": (on_face(zero, zero - 0.15, torch.full_like(zero, 0.012)), torch.stack([mouth_w, zero + 0.03, zero + 0.03], -1)),
        "ear_l": (torch.stack([-rx, zero - 0.01, zero], -1), torch.stack([ear * 0.45, ear * 1.3, ear], -1)),
        "ear_r": (torch.stack([rx, zero - 0.01, zero], -1), torch.stack([ear * 0.45, ear * 1.3, ear], -1)),
    }
    skin = _palette(d["skin_tone"], _SKIN)
    colours = {
        "head": skin, "ear_l": skin * 0.95, "ear_r": skin * 0.95, "nose": skin * 0.97,
        "hair": _palette(d["hair_colour"], _HAIR),
        "eye_l": _palette(d["eye_colour"], _EYES), "eye_r": _palette(d["eye_colour"], _EYES),
        "mouth": torch.tensor([0.62, 0.12, 0.16], dtype=p.dtype, device=p.device).expand(n, 3),
    }
    out = {f"{k}_centre": c for k, (c, _) in parts.items()}
    out.update({f"{k}_radii": r for k, (_, r) in parts.items()})
    out.update({f"{k}_colour": c for k, c in colours.items()})
    out["hairline"] = head_c[:, 1] + ry * _lerp(hair_extent, 0.6, 0.3)  # hair only above this height...
    out["hair_back"] = -rz * _lerp(hair_extent, 0.35, 0.1)  # ...or behind this depth
    return {k: v * SCALE if k.endswith(("_centre", "_radii")) or k.startswith("hair") and not k.endswith("colour")
            else v for k, v in out.items()}


def _hit_ellipsoid(o: torch.Tensor, d: torch.Tensor, centre: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Nearest positive ray parameter of rays ``o + t d`` ([N,M,3]) with ellipsoids ([N,3]); inf on a miss."""
    oc = (o - centre[:, None]) / radii[:, None]
    dd = d / radii[:, None]
    a = (dd * dd).sum(-1)
    b = (oc * dd).sum(-1)
    c = (oc * oc).sum(-1) - 1
    disc = b * b - a * c
    t = (-b - disc.clamp(min=0).sqrt()) / a
    return torch.where((disc > 0) & (t > 0), t, torch.full_like(t, math.inf))


FEATURES = ("eye_l", "eye_r", "nose", "mouth")  # the small parts that make a face


def render_heads(p: torch.Tensor, cameras: torch.Tensor, resolution: int = 64, supersample: int = 2,
                 feature_mask: bool = False):
    """Ray-cast heads ``p [N,13]`` from cameras ``[N,25]`` -> images ``[N,3,R,R]`` in [-1,1]
    (``supersample``² rays per pixel, averaged). With ``feature_mask``, also ``[N,1,R,R]``: the
    fraction of each pixel covered by an eye, the nose or the mouth (:data:`FEATURES`)."""
    if p.ndim != 2 or p.shape[1] != NUM_PARAMS or cameras.shape != (p.shape[0], 25):
        raise ValueError(f"expected p [N,{NUM_PARAMS}] and cameras [N,25], got {tuple(p.shape)}, {tuple(cameras.shape)}")
    n, res = p.shape[0], resolution * supersample
    o, d = RaySampler()(cameras[:, :16].view(-1, 4, 4), cameras[:, 16:25].view(-1, 3, 3), res)
    parts = head_parts(p.to(o))
    names: List[str] = ["head", "hair", "eye_l", "eye_r", "nose", "mouth", "ear_l", "ear_r"]
    ts = []
    for name in names:
        t = _hit_ellipsoid(o, d, parts[f"{name}_centre"], parts[f"{name}_radii"])
        if name == "hair":  # a cap: hits below the hairline and in front of the cut do not count
            x = o + t.clamp(max=10)[..., None] * d
            keep = (x[..., 1] > parts["hairline"][:, None]) | (x[..., 2] < parts["hair_back"][:, None])
            t = torch.where(keep, t, torch.full_like(t, math.inf))
        ts.append(t)
    t_all = torch.stack(ts, -1)  # [N,M,K]
    t_min, which = t_all.min(-1)
    hit = torch.isfinite(t_min)
    x = o + t_min.clamp(max=10)[..., None] * d
    light = F.normalize(torch.tensor(LIGHT, dtype=o.dtype, device=o.device), dim=0)

    def picked(kind: str) -> torch.Tensor:  # [N,M,3]: the hit part's centre / radii / colour per ray
        table = torch.stack([parts[f"{name}_{kind}"] for name in names], 1)  # [N,K,3]
        return torch.gather(table, 1, which[..., None].expand(-1, -1, 3))

    radii = picked("radii")
    normal = F.normalize((x - picked("centre")) / radii ** 2, dim=-1)
    shade = AMBIENT + (1 - AMBIENT) * (normal @ light).clamp(min=0)
    colour = picked("colour") * shade[..., None]
    bg = torch.tensor(BACKGROUND, dtype=o.dtype, device=o.device)
    colour = torch.where(hit[..., None], colour, bg)
    img = colour.permute(0, 2, 1).reshape(n, 3, res, res)
    mask = sum((which == names.index(name)) for name in FEATURES) & hit
    mask = mask.to(img.dtype).reshape(n, 1, res, res)
    if supersample > 1:
        img, mask = F.avg_pool2d(img, supersample), F.avg_pool2d(mask, supersample)
    img = img.clamp(0, 1) * 2 - 1
    return (img, mask) if feature_mask else img
