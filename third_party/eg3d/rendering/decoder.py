"""The small MLP that turns averaged tri-plane features into density and colour features."""
from __future__ import annotations

import torch
from torch import nn

from ..layers import FullyConnectedLayer


class OSGDecoder(nn.Module):
    """FC(32→64) → softplus → FC(64→1+C). Returns raw density `sigma` [N,M,1] and
    features `rgb` [N,M,C] = sigmoid(·)·1.002 − 0.001. Ray directions are not used."""

    def __init__(self, n_features: int, options: dict):
        super().__init__()
        self.hidden_dim = 64
        lr_mul = options["decoder_lr_mul"]
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features, self.hidden_dim, lr_multiplier=lr_mul),
            nn.Softplus(),
            FullyConnectedLayer(self.hidden_dim, 1 + options["decoder_output_dim"], lr_multiplier=lr_mul),
        )

    def forward(self, sampled_features: torch.Tensor, ray_directions: torch.Tensor = None) -> dict:
        """sampled_features [N, n_planes, M, C] -> {'rgb': [N,M,C_out], 'sigma': [N,M,1]}."""
        x = sampled_features.mean(1)
        n, m, c = x.shape
        x = self.net(x.reshape(n * m, c)).view(n, m, -1)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001
        sigma = x[..., 0:1]
        return {"rgb": rgb, "sigma": sigma}
