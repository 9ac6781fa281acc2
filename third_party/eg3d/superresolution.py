"""EG3D's super-resolution modules: the low-resolution neural render (32-channel feature
image + its RGB) is refined by two StyleGAN2 synthesis blocks, styled by the last w."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .ops import setup_filter
from .synthesis import SynthesisBlock


class _Superresolution(nn.Module):
    """Two synthesis blocks on top of the resized neural render.

    Subclasses fix the geometry: output resolution, the render size the first block
    expects, the blocks' widths and whether each upsamples.
    """

    output_resolution: int
    input_resolution: int
    block_specs: tuple  # ((out_channels, resolution, upsample), (out_channels, resolution, upsample))
    resize_only_smaller = False  # 4X resizes only when the render is smaller than its input size
    has_resample_filter = True

    def __init__(
        self,
        channels: int,
        img_resolution: int,
        sr_num_fp16_res: int,
        sr_antialias: bool,
        num_fp16_res: int = 4,
        conv_clamp: Optional[float] = None,
        channel_base: Optional[int] = None,
        channel_max: Optional[int] = None,
        **block_kwargs,
    ):
        super().__init__()
        del num_fp16_res, conv_clamp, channel_base, channel_max  # accepted for compatibility, unused
        name = type(self).__name__
        if img_resolution != self.output_resolution:
            raise ValueError(f"{name} produces {self.output_resolution}² images, not {img_resolution}²")
        use_fp16 = sr_num_fp16_res > 0
        self.sr_antialias = sr_antialias
        (c0, r0, up0), (c1, r1, up1) = self.block_specs
        clamp = 256 if use_fp16 else None
        self.block0 = SynthesisBlock(
            channels, c0, w_dim=512, resolution=r0, img_channels=3, is_last=False, use_fp16=use_fp16,
            conv_clamp=clamp, upsample=up0, **block_kwargs,
        )
        self.block1 = SynthesisBlock(
            c0, c1, w_dim=512, resolution=r1, img_channels=3, is_last=True, use_fp16=use_fp16,
            conv_clamp=clamp, upsample=up1, **block_kwargs,
        )
        if self.has_resample_filter:  # registered (unused) by the official modules; kept for key parity
            self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))

    def resize_input(self, rgb: torch.Tensor, x: torch.Tensor):
        """Bilinearly resize the render (RGB and features) to the first block's input size."""
        size = x.shape[-1]
        needed = size < self.input_resolution if self.resize_only_smaller else size != self.input_resolution
        if needed:
            target = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
            rgb = F.interpolate(rgb, size=target, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
        return rgb, x

    def forward(self, rgb: torch.Tensor, x: torch.Tensor, ws: torch.Tensor, return_internals=False, **block_kwargs):
        """rgb [N,3,r,r], x [N,C,r,r], ws [N,num_ws,512] -> image [N,3,R,R]."""
        ws = ws[:, -1:, :].repeat(1, 3, 1)
        rgb, x = self.resize_input(rgb, x)
        internals = {"input_x": x, "input_rgb": rgb}
        x, rgb = self.block0(x, rgb, ws, **block_kwargs)
        internals.update(block0_x=x, block0_rgb=rgb)
        x, rgb = self.block1(x, rgb, ws, **block_kwargs)
        return (rgb, internals) if return_internals else rgb


class SuperresolutionHybrid8XDC(_Superresolution):
    """128² render -> 512² (256/128 channels; the FFHQ checkpoints' module)."""

    output_resolution = 512
    input_resolution = 128
    block_specs = ((256, 256, True), (128, 512, True))
    has_resample_filter = False


class SuperresolutionHybrid8X(_Superresolution):
    """128² render -> 512² (128/64 channels)."""

    output_resolution = 512
    input_resolution = 128
    block_specs = ((128, 256, True), (64, 512, True))


class SuperresolutionHybrid4X(_Superresolution):
    """128² render -> 256²."""

    output_resolution = 256
    input_resolution = 128
    block_specs = ((128, 128, False), (64, 256, True))
    resize_only_smaller = True


class SuperresolutionHybrid2X(_Superresolution):
    """64² render -> 128² (ShapeNet cars)."""

    output_resolution = 128
    input_resolution = 64
    block_specs = ((128, 64, False), (64, 128, True))


SUPERRESOLUTION_MODULES = {
    cls.__name__: cls
    for cls in (SuperresolutionHybrid8XDC, SuperresolutionHybrid8X, SuperresolutionHybrid4X, SuperresolutionHybrid2X)
}


def superresolution_class(name: str) -> type:
    """Look up a module by its class name or official dotted name
    (e.g. 'training.superresolution.SuperresolutionHybrid8XDC')."""
    short = str(name).rsplit(".", 1)[-1]
    if short not in SUPERRESOLUTION_MODULES:
        raise ValueError(
            f"unknown super-resolution module {name!r}; expected one of {sorted(SUPERRESOLUTION_MODULES)}"
        )
    return SUPERRESOLUTION_MODULES[short]
