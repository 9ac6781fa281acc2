"""Swin Transformer V2 backbone as GOAE uses it: a four-stage feature pyramid, no classifier.

Module and parameter names follow the upstream implementation so that official checkpoints
load unchanged. Three kinds of constructor-computed tables are persistent buffers, as
upstream: `attn.relative_coords_table` (float), `attn.relative_position_index` (int64) and,
in shifted blocks only, `attn_mask` (float). The forward pass reads them from the module's
state and never recomputes them, so a loaded checkpoint's values are the ones used.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import SwinV2Config

# Upper bound of the attention temperature: exp(logit_scale) <= 1 / 0.01.
_LOGIT_SCALE_MAX = math.log(100.0)
_MASK_VALUE = -100.0


class SwinFeatures(NamedTuple):
    """The five backbone outputs GOAE reads, in upstream order.

    `base` and `query` are channels-first `[N, C, T]`; the others are tokens-first `[N, T, C]`
    with tokens in row-major grid order.
    """

    base: torch.Tensor  # last stage output after the final LayerNorm, [N, C3, T3]
    query: torch.Tensor  # input of the last stage (no final norm), [N, C3, T3]
    coarse: torch.Tensor  # input of stage 2, [N, T2, C2]
    mid: torch.Tensor  # input of stage 1, [N, T1, C1]
    fine: torch.Tensor  # input of stage 0 (patch embedding), [N, T0, C0]


# ----------------------------------------------------------------------------- tables


def relative_coords_table(window: tuple[int, int], pretrained_window: tuple[int, int]) -> torch.Tensor:
    """Log-spaced relative offsets fed to the continuous position bias MLP, `[1, 2Wh-1, 2Ww-1, 2]`.

    Offsets are divided by `pretrained_window - 1` (or `window - 1` when no pretrained size is
    given), scaled to [-8, 8] and mapped through sign(t) * log2(|t| + 1) / 3.
    """
    axes = [torch.arange(-(n - 1), n, dtype=torch.float32) for n in window]
    table = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).unsqueeze(0)
    divisors = pretrained_window if pretrained_window[0] > 0 else window
    table[..., 0] /= divisors[0] - 1
    table[..., 1] /= divisors[1] - 1
    table *= 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)


def relative_position_index(window: tuple[int, int]) -> torch.Tensor:
    """Row of the coordinate table for every (query, key) token pair in a window, `[N, N]` int64."""
    wh, ww = window
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # [N, N, 2] = query - key
    return (rel[..., 0] + wh - 1) * (2 * ww - 1) + (rel[..., 1] + ww - 1)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """`[B, H, W, C]` -> `[B * nW, window * window, C]`, windows row-major within each image."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: `[B * nW, window * window, C]` -> `[B, H, W, C]`."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(resolution: tuple[int, int], window: int, shift: int) -> torch.Tensor:
    """Additive attention mask of a cyclically shifted window layout, `[nW, N, N]`.

    The shifted grid is cut into 3 x 3 regions; token pairs from different regions get -100.
    """
    h, w = resolution
    labels = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(cuts):
        for j, cols in enumerate(cuts):
            labels[:, rows, cols, :] = 3 * i + j
    labels = window_partition(labels, window).squeeze(-1)  # [nW, N]
    differs = labels.unsqueeze(1) != labels.unsqueeze(2)
    return torch.zeros(differs.shape).masked_fill(differs, _MASK_VALUE)


# ----------------------------------------------------------------------------- layers


class DropPath(nn.Module):
    """Stochastic depth: in train mode, zero a whole sample's branch with probability `p`
    and rescale the kept ones by 1 / (1 - p). Draws from the global RNG, like `nn.Dropout`."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


class Mlp(nn.Module):
    """Linear -> GELU (exact) -> dropout -> Linear -> dropout."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = _dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    """Swin-V2 window self-attention: scaled cosine similarity plus a continuous relative
    position bias (a small MLP over log-spaced offsets, squashed to (0, 16))."""

    def __init__(self, dim: int, window: tuple[int, int], num_heads: int,
                 pretrained_window: tuple[int, int] = (0, 0), qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.window = window
        self.num_heads = num_heads
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.register_buffer("relative_coords_table", relative_coords_table(window, pretrained_window))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, num_heads, bias=False))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_drop = _dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = _dropout(proj_drop)

    def position_bias(self) -> torch.Tensor:
        """`[heads, N, N]` bias in (0, 16) from the stored coordinate and index tables."""
        n = self.window[0] * self.window[1]
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        bias = table[self.relative_position_index.view(-1)].view(n, n, self.num_heads)
        return 16 * torch.sigmoid(bias.permute(2, 0, 1))

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: `[B * nW, N, C]` windows; mask: `[nW, N, N]` additive mask or None."""
        bw, n, c = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(bw, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)

        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * self.logit_scale.clamp(max=_LOGIT_SCALE_MAX).exp()
        attn = attn + self.position_bias().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(bw, self.num_heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))

        x = (attn @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj_drop(self.proj(x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window={self.window}, num_heads={self.num_heads}"


class SwinBlock(nn.Module):
    """(Shifted-)window attention and MLP, each as a residual branch with res-post-norm:
    x + DropPath(LN(branch(x)))."""

    def __init__(self, dim: int, resolution: tuple[int, int], num_heads: int, window: int, shift: int,
                 pretrained_window: int = 0, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.resolution = resolution
        if min(resolution) <= window:  # the whole map fits one window: no partition, no shift
            window, shift = min(resolution), 0
        if not 0 <= shift < window:
            raise ValueError(f"shift {shift} must lie in [0, window {window})")
        self.window = window
        self.shift = shift

        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, (window, window), num_heads, (pretrained_window, pretrained_window),
                                    qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        mask = shifted_window_mask(resolution, window, shift) if shift > 0 else None
        self.register_buffer("attn_mask", mask)  # None registers nothing in the state_dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, length, c = x.shape
        if length != h * w:
            raise ValueError(f"expected {h * w} tokens, got {length}")
        y = x.view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(window_partition(y, self.window), mask=self.attn_mask)
        y = window_reverse(y, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(self.norm1(y.reshape(b, h * w, c)))
        return x + self.drop_path(self.norm2(self.mlp(x)))

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, window={self.window}, shift={self.shift}"


class PatchMerging(nn.Module):
    """Halve the grid: concatenate each 2x2 neighbourhood, then Linear(4C -> 2C) and LayerNorm."""

    def __init__(self, resolution: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        # (even row, even col), (odd row, even col), (even row, odd col), (odd row, odd col)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.norm(self.reduction(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    """`depth` blocks at one resolution (odd blocks shifted by half a window), then an optional
    patch merging."""

    def __init__(self, dim: int, resolution: tuple[int, int], depth: int, num_heads: int, window: int,
                 pretrained_window: int, drop_path: list[float], downsample: bool,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, num_heads, window, shift=0 if i % 2 == 0 else window // 2,
                      pretrained_window=pretrained_window, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                      drop=drop, attn_drop=attn_drop, drop_path=drop_path[i])
            for i in range(depth)
        )
        self.downsample = PatchMerging(resolution, dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection (strided conv) to row-major tokens, then LayerNorm."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class SwinTransformerV2(nn.Module):
    """Four-stage Swin-V2 feature pyramid returning `SwinFeatures` (GOAE's modified forward)."""

    def __init__(self, config: Optional[SwinV2Config] = None) -> None:
        super().__init__()
        config = config or SwinV2Config()
        self.config = config
        n = config.num_stages
        self.patch_embed = PatchEmbed(config.patch_size, config.in_chans, config.embed_dim)
        self.pos_drop = _dropout(config.drop_rate)
        rates = torch.linspace(0, config.drop_path_rate, sum(config.depths), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for i, depth in enumerate(config.depths):
            first = sum(config.depths[:i])
            self.layers.append(SwinStage(
                config.stage_dim(i), config.stage_resolution(i), depth, config.num_heads[i], config.window_size,
                config.pretrained_window_sizes[i], rates[first:first + depth], downsample=i < n - 1,
                mlp_ratio=config.mlp_ratio, qkv_bias=config.qkv_bias, drop=config.drop_rate,
                attn_drop=config.attn_drop_rate,
            ))
        self.norm = nn.LayerNorm(config.stage_dim(n - 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream initialisation: normal Linear weights (std 0.02), zero biases, unit
        LayerNorms, then zero gains on the blocks' res-post-norms.

        Upstream draws from a normal truncated at +-2, i.e. at 100 std: the same distribution
        as a plain normal, which is much faster to sample.
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, SwinBlock):
                for norm in (m.norm1, m.norm2):
                    nn.init.zeros_(norm.weight)
                    nn.init.zeros_(norm.bias)

    def forward(self, x: torch.Tensor) -> SwinFeatures:
        """x: `[N, in_chans, img_size, img_size]`."""
        x = self.pos_drop(self.patch_embed(x))
        inputs = []
        for layer in self.layers:
            inputs.append(x)
            x = layer(x)
        fine, mid, coarse, query = inputs
        return SwinFeatures(self.norm(x).transpose(1, 2), query.transpose(1, 2), coarse, mid, fine)
