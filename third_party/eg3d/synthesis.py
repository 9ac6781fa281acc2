"""StyleGAN2 synthesis network (skip architecture) and the backbone that emits EG3D's tri-planes."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from .layers import SynthesisLayer, ToRGBLayer
from .mapping import MappingNetwork
from .ops import setup_filter, upsample2d


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (2×-upsampling) conv0, conv1 and ToRGB.

    `upsample=False` gives EG3D's `SynthesisBlockNoUp` (same resolution in and out,
    skip image not upsampled) used by the 2X/4X super-resolution modules.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = 256,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        fused_modconv_default="inference_only",
        upsample: bool = True,
        **layer_kwargs,
    ):
        super().__init__()
        if architecture != "skip":
            raise ValueError(f"only the 'skip' architecture (EG3D's) is implemented, got {architecture!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.memory_format: Optional[torch.memory_format] = None  # set_memory_format: overrides the rule above
        self.fused_modconv_default = fused_modconv_default
        self.upsample = upsample
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2 if upsample else 1,
                resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last,
                **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp,
            channels_last=self.channels_last, **layer_kwargs,
        )
        self.num_conv += 1
        self.torgb = ToRGBLayer(
            out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, channels_last=self.channels_last
        )
        self.num_torgb += 1

    def forward(
        self,
        x: Optional[torch.Tensor],
        img: Optional[torch.Tensor],
        ws: torch.Tensor,
        force_fp32: bool = False,
        fused_modconv=None,
        update_emas: bool = False,
        **layer_kwargs,
    ):
        """x, img: the previous block's features and skip image (None for the first block);
        ws: [N, num_conv + num_torgb, w_dim]. Returns the new (x, img)."""
        del update_emas
        if ws.ndim != 3 or ws.shape[1] != self.num_conv + self.num_torgb or ws.shape[2] != self.w_dim:
            raise ValueError(
                f"block {self.resolution} expects ws [N, {self.num_conv + self.num_torgb}, {self.w_dim}], "
                f"got {tuple(ws.shape)}"
            )
        w_iter = iter(ws.unbind(dim=1))
        if ws.device.type != "cuda":
            force_fp32 = True
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if self.memory_format is not None:
            memory_format = self.memory_format
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == "inference_only":
            fused_modconv = not self.training

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=torch.contiguous_format)  # 3-D: no channels_last
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1]).contiguous(memory_format=memory_format)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        else:
            expected = self.resolution // 2 if self.upsample else self.resolution
            if x is None or x.shape[1] != self.in_channels or x.shape[-2:] != (expected, expected):
                got = None if x is None else tuple(x.shape)
                raise ValueError(
                    f"block {self.resolution} expects x [N, {self.in_channels}, {expected}, {expected}], got {got}"
                )
            x = x.to(dtype=dtype, memory_format=memory_format)
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None and self.upsample:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
        y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution:d}, architecture={self.architecture:s}, upsample={self.upsample}"


class SynthesisNetwork(nn.Module):
    """Blocks from 4×4 up to `img_resolution`, each adding its ToRGB output to the skip image."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        **block_kwargs,
    ):
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == self.img_resolution
            block = SynthesisBlock(
                in_channels, channels[res], w_dim=w_dim, resolution=res, img_channels=img_channels,
                is_last=is_last, use_fp16=(res >= fp16_resolution), **block_kwargs,
            )
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, return_blocks: bool = False, **block_kwargs):
        """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R] (with `return_blocks`,
        also a dict {res: (x, img)} of every block's outputs)."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        blocks = {}
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur_ws, **block_kwargs)
            if return_blocks:
                blocks[res] = (x, img)
        return (img, blocks) if return_blocks else img

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim:d}, num_ws={self.num_ws:d}, img_resolution={self.img_resolution:d}, "
            f"img_channels={self.img_channels:d}, num_fp16_res={self.num_fp16_res:d}"
        )


class StyleGAN2Backbone(nn.Module):
    """Mapping + synthesis network; in EG3D it renders the 3×32-channel tri-planes at 256²."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Optional[dict] = None,
        **synthesis_kwargs,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {})
        )

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)


def set_memory_format(module: nn.Module, memory_format: Optional[torch.memory_format]) -> nn.Module:
    """Make every SynthesisBlock inside `module` (the backbone's and the super-resolution's) run
    on features of `memory_format` in any precision, and store the modules' 4-D weights in it;
    None restores upstream's rule (channels-last only for fp16 blocks built with
    fp16_channels_last, weights contiguous). Returns `module`. Only the memory layout changes:
    the results differ by floating-point rounding at most."""
    for block in module.modules():
        if isinstance(block, SynthesisBlock):
            block.memory_format = memory_format
    module.to(memory_format=memory_format or torch.contiguous_format)
    return module
