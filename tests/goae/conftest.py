"""Fixtures of the GOAE tests: where the reference numbers live and a small encoder configuration."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import goae

from ..conftest import _require


@pytest.fixture(scope="session")
def goae_fixtures(shared_dir) -> Path:
    """../shared/fixtures/goae (skipped when absent, a failure under CI)."""
    return _require(shared_dir / "fixtures" / "goae")


@pytest.fixture(scope="session")
def manifest(goae_fixtures) -> dict:
    return json.loads((goae_fixtures / "manifest.json").read_text())


def tiny_config(stochastic: bool = False) -> goae.GOAEConfig:
    """A few-thousand-parameter encoder with every code path of the real one: shifted windows
    with masks in stages 0-1, a shrunk single window in stages 2-3, all three delta heads."""
    swin = goae.SwinV2Config(img_size=32, patch_size=2, embed_dim=8, depths=(2, 2, 1, 1), num_heads=(1, 2, 2, 4),
                             window_size=4, pretrained_window_sizes=(3, 3, 3, 2), drop_path_rate=0.5)
    return goae.GOAEConfig(swin=swin, w_dim=16, cross_attn_heads=2, cross_attn_ffn_dim=32,
                           cross_attn_dropout=0.5, stochastic=stochastic)


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter O(1)-activation random values (upstream init zeroes the block norms,
    which would make every Swin block the identity): matrices N(0, 1/fan_in), 1-D weights
    (norm gains) 1 + N(0, 0.01), everything else N(0, 0.01). Buffers are left alone."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        n = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if p.ndim >= 2:
            value = n / math.sqrt(math.prod(p.shape[1:]))
        elif name.endswith("weight"):
            value = 1 + 0.1 * n
        else:
            value = 0.1 * n
        p.copy_(value)
    return model
