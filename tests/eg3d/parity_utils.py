"""Helpers to compare our tensors with the reference fixtures' full tensors and summaries."""
from __future__ import annotations

import torch

# Tolerances (CPU, float32). The fixture README measured the reference against itself:
# rerun 0, 1 vs 2 threads 8.3e-7 on the image, fused vs non-fused modconv ~6e-6. A faithful
# re-implementation performs the same float32 operations in the same order, so anything
# above ~1e-6 relative would mean a real difference. We use the README's suggestion:
# 1e-5 * max(1, max|ref|) for latents, planes, rays, depths, weights and image_raw, and
# 1e-4 * max(1, max|ref|) for the super-resolved image and its features (two more conv
# blocks of accumulated rounding), float64 sums within 1e-6 * abs_sum (sums of squares within
# 2e-6 * sq_sum: squaring doubles a relative error).
TIGHT = 1e-5
LOOSE = 1e-4
SUM_RTOL = 1e-6


def assert_bitwise(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Same shape, dtype and bits (signed zeros included)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert torch.equal(actual.view(torch.int32), expected.view(torch.int32)), (actual - expected).abs().max()


def assert_close(ours: torch.Tensor, ref: torch.Tensor, rel: float = TIGHT, what: str = "") -> float:
    """max|ours - ref| <= rel * max(1, max|ref|); returns the max abs difference."""
    ours = ours.detach().to(torch.float64).cpu()
    ref = ref.detach().to(torch.float64).cpu()
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} != reference {tuple(ref.shape)}"
    diff = (ours - ref).abs().max().item() if ref.numel() else 0.0
    bound = rel * max(1.0, ref.abs().max().item())
    assert diff <= bound, f"{what}: max abs diff {diff:.3g} > {bound:.3g}"
    return diff


def assert_summary(ours: torch.Tensor, summary: dict, rel: float = TIGHT, what: str = "") -> None:
    """Compare a full tensor with a fixture summary: shape, sums, strided grid and crops."""
    assert list(ours.shape) == list(summary["shape"]), f"{what}: shape {tuple(ours.shape)} != {summary['shape']}"
    x = ours.detach().to(torch.float64).cpu()
    scale = max(1.0, abs(summary["min"]), abs(summary["max"]))
    abs_sum = summary["abs_sum"]
    for key, value in (("sum", x.sum()), ("abs_sum", x.abs().sum()), ("sq_sum", x.square().sum())):
        tol = 2 * SUM_RTOL * summary["sq_sum"] if key == "sq_sum" else SUM_RTOL * abs_sum
        tol += rel * scale * 10
        assert abs(value.item() - summary[key]) <= tol, f"{what}.{key}: {value.item()} vs {summary[key]}"
    if "strided" in summary:
        s, o = summary["stride"], summary["offset"]
        strided = x[..., o::s, o::s]
        assert_close(strided, summary["strided"], rel, f"{what}.strided")
    for crop in summary.get("crops", []):
        y0, x0, h, w = crop["y0"], crop["x0"], crop["h"], crop["w"]
        assert_close(x[..., y0 : y0 + h, x0 : x0 + w], crop["values"], rel, f"{what}.crop@({y0},{x0})")
