"""Alpha compositing along rays (EG3D's MipRayMarcher2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MipRayMarcher2(nn.Module):
    """Composites the D−1 intervals between sorted samples using mid-point colours,
    densities and depths; density activation softplus(σ − 1)."""

    def forward(self, colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, rendering_options: dict):
        """colors [N,M,D,C], densities/depths [N,M,D,1] -> (rgb [N,M,C] in about [-1,1],
        depth [N,M,1], weights [N,M,D-1,1])."""
        deltas = depths[:, :, 1:] - depths[:, :, :-1]
        colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
        densities_mid = (densities[:, :, :-1] + densities[:, :, 1:]) / 2
        depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2

        clamp_mode = rendering_options["clamp_mode"]
        if clamp_mode != "softplus":
            raise ValueError(f"unsupported clamp_mode {clamp_mode!r} (EG3D uses 'softplus')")
        densities_mid = F.softplus(densities_mid - 1)

        alpha = 1 - torch.exp(-densities_mid * deltas)
        alpha_shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], -2)
        weights = alpha * torch.cumprod(alpha_shifted, -2)[:, :, :-1]

        composite_rgb = torch.sum(weights * colors_mid, -2)
        weight_total = weights.sum(2)
        composite_depth = torch.sum(weights * depths_mid, -2) / weight_total
        composite_depth = torch.nan_to_num(composite_depth, float("inf"))
        composite_depth = torch.clamp(composite_depth, torch.min(depths), torch.max(depths))

        if rendering_options.get("white_back", False):
            composite_rgb = composite_rgb + 1 - weight_total
        composite_rgb = composite_rgb * 2 - 1
        return composite_rgb, composite_depth, weights
