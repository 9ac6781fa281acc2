"""audit.png (the leakage curves) and audit_attack.png (the attacks' renders beside the photo), drawn
with Pillow alone."""
from __future__ import annotations

import io
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

Colour = Tuple[int, int, int]
ERASED, RETAINED, LEVEL = (200, 40, 40), (40, 90, 200), (0, 0, 0)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        return ImageFont.load_default()


def _dashed(draw: ImageDraw.ImageDraw, points: Sequence[Tuple[float, float]], fill: Colour, width: int = 2,
            dash: float = 7.0) -> None:
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = max(1e-6, float(np.hypot(x1 - x0, y1 - y0)))
        for start in np.arange(0.0, length, 2 * dash):
            a, b = start / length, min(start + dash, length) / length
            draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                      fill=fill, width=width)


def _polyline(draw: ImageDraw.ImageDraw, points: Sequence[Tuple[float, float]], fill: Colour, dashed: bool) -> None:
    if dashed:
        _dashed(draw, points, fill)
    else:
        draw.line(list(points), fill=fill, width=2)


def leakage_png(radii: Sequence[float], series: List[dict], level: Optional[float], level_label: str,
                trained_radius: Optional[float], width: int = 1000, height: int = 480) -> bytes:
    """Line plot of similarity against radius. ``series``: dicts with ``label``, ``values`` (one per
    radius, None for a gap), ``colour`` and ``dashed``; ``level``: the acceptance level (a dashed
    black line); ``trained_radius``: the adjacency loss's α range, shaded."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(14), _font(12)
    left, right, top, bottom = 70, width - 290, 40, height - 60  # the legend sits right of the plot
    values = [v for s in series for v in s["values"] if v is not None] + ([level] if level is not None else [])
    y_low = min(0.0, float(np.floor(min(values, default=0.0) * 5) / 5))
    x_high = max(max(radii), 1e-6)

    def xy(r: float, v: float) -> Tuple[float, float]:
        return left + (right - left) * r / x_high, bottom - (bottom - top) * (v - y_low) / (1.0 - y_low)

    if trained_radius:
        x0, _ = xy(0.0, 0.0)
        x1, _ = xy(min(trained_radius, x_high), 0.0)
        draw.rectangle([x0, top, x1, bottom], fill=(238, 238, 238))
        draw.text((x0 + 4, bottom - 18), f"adjacency loss trains r <= {trained_radius:g}", fill=(110, 110, 110),
                  font=small)
    for tick in np.arange(y_low, 1.0001, 0.2):
        _, y = xy(0.0, tick)
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.text((left - 40, y - 7), f"{tick:.1f}", fill=(0, 0, 0), font=small)
    for r in radii:
        x, _ = xy(r, y_low)
        draw.line([(x, bottom), (x, bottom + 5)], fill=(0, 0, 0))
        draw.text((x - 8, bottom + 8), f"{r:g}", fill=(0, 0, 0), font=small)
    draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
    draw.text((left, height - 28), "radius r of w + r·u (unit direction u; W+ norm)", fill=(0, 0, 0), font=font)
    draw.text((left, 10), "ID similarity to the source's renders of the identity (mean over views and directions)",
              fill=(0, 0, 0), font=font)
    if level is not None:
        _dashed(draw, [xy(0.0, level), xy(x_high, level)], LEVEL, width=1, dash=5)
        _, y = xy(0.0, level)
        draw.text((left + 6, y - 16), level_label, fill=LEVEL, font=small)
    for s in series:
        points = [xy(r, v) for r, v in zip(radii, s["values"]) if v is not None]
        if len(points) > 1:
            _polyline(draw, points, s["colour"], s["dashed"])
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=s["colour"])
    for i, s in enumerate(series):
        y = top + 18 * i
        x = right + 20
        _polyline(draw, [(x, y + 7), (x + 30, y + 7)], s["colour"], s["dashed"])
        draw.text((x + 36, y), s["label"], fill=(0, 0, 0), font=small)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def leakage_series(leakage: dict) -> List[dict]:
    """The four curves of audit.png from the audit record's ``leakage`` entry."""
    target, retained = leakage["target"], leakage["retained"]
    out = [{"label": "erased identity, unlearned", "values": target["unlearned"]["mean"], "colour": ERASED,
            "dashed": False},
           {"label": "erased identity, source", "values": target["source"]["mean"], "colour": ERASED, "dashed": True}]
    if retained["count"]:
        out += [{"label": f"retained ({retained['count']}), unlearned", "values": retained["unlearned"],
                 "colour": RETAINED, "dashed": False},
                {"label": f"retained ({retained['count']}), source", "values": retained["source"],
                 "colour": RETAINED, "dashed": True}]
    return out


def attack_grid(photo: np.ndarray, renders: Dict[str, torch.Tensor], size: int = 128) -> Optional[np.ndarray]:
    """One row per available render set (re-inversion / best attack, source then unlearned), each row
    the photo then the views; None when there is nothing to show."""
    from guide.imageio import uint8_to_tensor
    from guide.render import grid

    order = ("reinversion/source", "reinversion/unlearned", "attack/source", "attack/unlearned")
    rows = [renders[k] for k in order if k in renders]
    if not rows:
        return None
    tile = uint8_to_tensor(photo)
    tile = torch.nn.functional.interpolate(tile, size=rows[0].shape[-2:], mode="bilinear", align_corners=False,
                                           antialias=True)
    return grid([torch.cat([tile.to(r.device), r]) for r in rows], size=size)


ATTACK_ROWS_CAPTION = ("rows, each starting with the aligned photo: re-inversion through the source, through the "
                       "unlearned generator; best optimisation attack through the source, through the unlearned "
                       "generator (rows that were skipped are left out)")
