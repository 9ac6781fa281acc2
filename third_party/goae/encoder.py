"""GOAE's inversion encoder: a Swin-V2 pyramid read by a base head and three cross-attention heads."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import check_state_dict, read_state_dict
from .config import GOAEConfig
from .swin import SwinFeatures, SwinTransformerV2

_HEADS = ("coarse", "mid", "fine")


def _mlp(in_dim: int, out_dim: int, layers: int) -> nn.Sequential:
    """`layers - 1` x (Linear(in, in) -> LeakyReLU(0.01)), then Linear(in, out)."""
    modules = []
    for _ in range(layers - 1):
        modules += [nn.Linear(in_dim, in_dim), nn.LeakyReLU()]
    return nn.Sequential(*modules, nn.Linear(in_dim, out_dim))


def _linear_lrelu(*dims: int) -> nn.Sequential:
    """Linear -> LeakyReLU(0.01) between each pair of consecutive widths."""
    modules = []
    for a, b in zip(dims[:-1], dims[1:]):
        modules += [nn.Linear(a, b), nn.LeakyReLU()]
    return nn.Sequential(*modules)


class CrossAttention(nn.Module):
    """Latent queries attend to a feature map: multi-head attention with a residual add and a
    non-affine LayerNorm, then a ReLU feed-forward with a residual add and no norm."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """query: `[N, Q, dim]`; memory (keys = values): `[N, T, dim]`."""
        attended = self.multihead_attn(query, memory, memory, need_weights=True)[0]
        x = self.norm(query + self.dropout(attended))
        return x + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x)))))


class GOAEncoder(nn.Module):
    """GOAE 3D-GAN-inversion encoder, configured by default exactly as GUIDE builds it.

    `forward(x)` maps `[N, 3, 256, 256]` images in [-1, 1] to `(ws, ws_base)`, both
    `[N, 14, 512]`: `ws` is the latent as an offset from the generator's `w_avg` (add it to
    get EG3D's w), `ws_base` is the base code repeated over the 14 rows (row 0 of `ws`).
    State_dict keys equal upstream's, so `encoder_FFHQ.pt` loads with `strict=True`; see
    `from_checkpoint`.

    Deviations from upstream, all without effect on parameters or on eval-mode outputs:

    * Deterministic. GUIDE never calls `encoder.eval()`, so its inversion runs with live
      DropPath (rates 0 -> 0.2) and cross-attention dropout (0.1), and its result depends on
      the global RNG. By default this module has no stochastic layers at all, so every mode
      gives the eval-mode result. For upstream's behaviour build
      `GOAEncoder(GOAEConfig(stochastic=True))` and call `.train()`; the draws follow the
      same distributions, not upstream's exact random stream.
    * The module is returned in eval mode.
    * The attention-temperature ceiling (ln 100) is a plain number, not a tensor created on
      "cuda", so the encoder runs on any device; devices and dtypes follow the module and input.
    * Upstream's progressive-training stage machinery (`stage_list`, `set_stage`) is left
      out: GUIDE never uses it, and its inference stage (all three delta heads) is built in.
    """

    def __init__(self, config: Optional[GOAEConfig] = None) -> None:
        super().__init__()
        config = config or GOAEConfig()
        self.config = config
        swin = config.swin
        if not config.stochastic:
            swin = dataclasses.replace(swin, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0)
        dropout = config.cross_attn_dropout if config.stochastic else 0.0
        channels = [swin.stage_dim(i) for i in range(4)]
        tokens = [swin.stage_tokens(i) for i in range(4)]
        w = config.w_dim

        self.swin_model = SwinTransformerV2(swin)
        # base code: token-axis MLP added to the token max, then a channel MLP
        self.mapper_base_spatial = _mlp(tokens[3], 1, config.mlp_layer)
        self.mapper_base_channel = _mlp(channels[3], w, config.mlp_layer)
        # latent queries of the three delta heads, read from the last stage's input the same way
        for name, rows in zip(_HEADS, config.delta_rows):
            setattr(self, f"mapper_query_spatial_{name}", _mlp(tokens[3], rows, config.mlp_layer))
            setattr(self, f"mapper_query_channel_{name}", _mlp(channels[3], w, config.mlp_layer))
        # keys/values: stage inputs 2, 1, 0 lifted to width w; finer maps also receive the
        # coarser map, resampled along the token axis
        self.mapper_coarse_channel = _linear_lrelu(channels[2], w)
        self.mapper_mid_channel = _linear_lrelu(channels[1], w)
        self.mapper_fine_channel = _linear_lrelu(channels[0], 2 * channels[0], w)
        self.mapper_coarse_to_mid_spatial = _linear_lrelu(tokens[2], 2 * tokens[2], tokens[1])
        self.mapper_mid_to_fine_spatial = _linear_lrelu(tokens[1], 2 * tokens[1], tokens[0])
        for name in _HEADS:
            setattr(self, f"cross_att_{name}",
                    CrossAttention(w, config.cross_attn_heads, config.cross_attn_ffn_dim, dropout))
        self.eval()

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images `[N, 3, H, W]` in [-1, 1] (H = W = 256 by default) -> `(ws, ws_base)`, `[N, 14, 512]` each."""
        size = self.config.swin.img_size
        expected = (self.config.swin.in_chans, size, size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected images of shape [N, {', '.join(map(str, expected))}], got {list(x.shape)}")
        return self.map_features(self.swin_model(x))

    def map_features(self, features: SwinFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """The latent heads: backbone features -> `(ws, ws_base)`."""
        ws_base = self._pooled(features.base, self.mapper_base_spatial, self.mapper_base_channel)
        ws_base = ws_base.repeat(1, self.num_ws, 1)

        kv_coarse = self.mapper_coarse_channel(features.coarse)
        kv_mid = self.mapper_mid_channel(features.mid) + self._resample(self.mapper_coarse_to_mid_spatial, kv_coarse)
        kv_fine = self.mapper_fine_channel(features.fine) + self._resample(self.mapper_mid_to_fine_spatial, kv_mid)

        deltas = [ws_base.new_zeros(ws_base.shape[0], 1, ws_base.shape[2])]
        for name, kv in zip(_HEADS, (kv_coarse, kv_mid, kv_fine)):
            query = self._pooled(features.query, getattr(self, f"mapper_query_spatial_{name}"),
                                 getattr(self, f"mapper_query_channel_{name}"))
            deltas.append(getattr(self, f"cross_att_{name}")(query, kv))
        return ws_base + torch.cat(deltas, dim=1), ws_base

    @staticmethod
    def _pooled(x: torch.Tensor, spatial: nn.Module, channel: nn.Module) -> torch.Tensor:
        """`[N, C, T]` -> `[N, rows, w]`: channel MLP of (token-axis MLP + token max)."""
        return channel(spatial(x).transpose(1, 2) + x.amax(dim=-1, keepdim=True).transpose(1, 2))

    @staticmethod
    def _resample(mapper: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Apply `mapper` along the token axis of `[N, T, C]`."""
        return mapper(x.transpose(1, 2)).transpose(1, 2)

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path], device: Union[str, torch.device] = "cpu",
                        config: Optional[GOAEConfig] = None) -> "GOAEncoder":
        """Build the encoder from a plain state_dict file such as GOAE's `encoder_FFHQ.pt`.

        The file is read with `torch.load(weights_only=True, map_location=device)` and must hold
        exactly the model's keys and shapes. Every tensor, including the stored attention
        tables and masks, comes from the file. Returns the model on `device`, in eval mode.

        Raises:
            FileNotFoundError: no such file.
            ValueError: unreadable file, or keys/shapes that differ (the first few are named).
        """
        state = read_state_dict(path, map_location=device)
        with torch.device("meta"):
            model = cls(config)
        check_state_dict(model.state_dict(), state, source=str(path))
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval()
