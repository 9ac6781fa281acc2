"""Configurations of the GOAE encoder and its Swin Transformer V2 backbone.

The defaults are the configuration GUIDE uses: the Swin-V2 settings of GUIDE's
`goae/swinv2.yaml` merged over the upstream yacs defaults, two-layer mapping MLPs, and the
cross-attention heads of `GOAEncoder`. `GOAEConfig()` therefore describes the network stored
in the official `encoder_FFHQ.pt`.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SwinV2Config:
    """Settings of a four-stage Swin Transformer V2 feature extractor (GOAE reads all four stages).

    Upstream options that GUIDE leaves off are not offered: absolute position embedding
    (`APE: False`), disabling the patch-embedding norm (`PATCH_NORM: True`), gradient
    checkpointing and the classifier head (commented out upstream; `NUM_CLASSES` is unused).

    The three rates are upstream's regularisation settings. The backbone applies them in
    train mode only; `GOAEncoder` passes zeros unless built with `stochastic=True`.
    """

    img_size: int = 256
    patch_size: int = 4
    in_chans: int = 3
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 16
    pretrained_window_sizes: tuple[int, ...] = (12, 12, 12, 6)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.2

    def __post_init__(self) -> None:
        n = len(self.depths)
        if n != 4 or len(self.num_heads) != n or len(self.pretrained_window_sizes) != n:
            raise ValueError("depths, num_heads and pretrained_window_sizes need one entry for each of 4 stages")
        side = self.img_size // self.patch_size
        if self.img_size % self.patch_size or side % 2 ** (n - 1):
            raise ValueError(f"img_size {self.img_size} must split into patches of {self.patch_size} "
                             f"and then halve {n - 1} times")

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    def stage_dim(self, i: int) -> int:
        """Channels of stage `i` (the embedding width doubles at every patch merging)."""
        return self.embed_dim * 2**i

    def stage_resolution(self, i: int) -> tuple[int, int]:
        """Token grid (rows, cols) of stage `i`."""
        side = self.img_size // self.patch_size // 2**i
        return side, side

    def stage_tokens(self, i: int) -> int:
        h, w = self.stage_resolution(i)
        return h * w


@dataclass(frozen=True)
class GOAEConfig:
    """Settings of `GOAEncoder`: a Swin-V2 backbone plus the GOAE latent heads.

    Head sizes follow from the backbone (channels and token counts of its four stages):
    for the default backbone the base code is read from 1024 channels x 64 tokens, and the
    key/value maps have 256, 1024 and 4096 tokens of width `w_dim`.

    Attributes:
        swin: backbone settings.
        mlp_layer: depth of the query/base mapping MLPs (upstream `mlp_layer`).
        w_dim: width of one latent row (EG3D's w space).
        delta_rows: rows predicted by the coarse, mid and fine cross-attention heads. The
            output has `1 + sum(delta_rows)` rows; row 0 is the base code alone.
        cross_attn_heads, cross_attn_ffn_dim: shape of the three cross-attention heads.
        cross_attn_dropout: upstream's dropout in those heads (used only if `stochastic`).
        stochastic: build upstream's DropPath and dropout layers, active in train mode. Off
            by default, so the encoder is deterministic in every mode (see `GOAEncoder`).

    Upstream's `stage_list` is not a field: it only drives progressive training through
    `set_stage`, which GUIDE never calls, so all three delta heads are always active.
    """

    swin: SwinV2Config = field(default_factory=SwinV2Config)
    mlp_layer: int = 2
    w_dim: int = 512
    delta_rows: tuple[int, int, int] = (3, 3, 7)
    cross_attn_heads: int = 4
    cross_attn_ffn_dim: int = 1024
    cross_attn_dropout: float = 0.1
    stochastic: bool = False

    def __post_init__(self) -> None:
        if self.mlp_layer < 1:
            raise ValueError(f"mlp_layer must be >= 1, got {self.mlp_layer}")
        if len(self.delta_rows) != 3:
            raise ValueError(f"delta_rows needs three entries (coarse, mid, fine), got {self.delta_rows}")

    @property
    def num_ws(self) -> int:
        """Rows of the predicted latent (14 for EG3D)."""
        return 1 + sum(self.delta_rows)
