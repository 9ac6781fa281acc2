"""Constructor kwargs of useful generator configurations.

`ffhq_rebalanced_512_128()` is the configuration of the released `ffhqrebalanced512-128.pkl`
(the checkpoint GUIDE uses), so benchmarks and tests can build a full-size generator with
random weights. `tiny()` is a small configuration with the same code paths for fast tests
and demos. Real checkpoints carry their own kwargs; prefer those when loading one.
"""
from __future__ import annotations

import copy

_FFHQ_RENDERING = {
    "depth_resolution": 48,
    "depth_resolution_importance": 48,
    "ray_start": 2.25,
    "ray_end": 3.3,
    "box_warp": 1,
    "avg_camera_radius": 2.7,
    "avg_camera_pivot": [0, 0, 0.2],
    "image_resolution": 512,
    "disparity_space_sampling": False,
    "clamp_mode": "softplus",
    "superresolution_module": "training.superresolution.SuperresolutionHybrid8XDC",
    "c_gen_conditioning_zero": False,
    "gpc_reg_prob": 0.8,
    "c_scale": 1.0,
    "superresolution_noise_mode": "none",
    "density_reg": 0.25,
    "density_reg_p_dist": 0.004,
    "reg_type": "l1",
    "decoder_lr_mul": 1.0,
    "sr_antialias": True,
}

_FFHQ = {
    "z_dim": 512,
    "w_dim": 512,
    "mapping_kwargs": {"num_layers": 2},
    "channel_base": 32768,
    "channel_max": 512,
    "fused_modconv_default": "inference_only",
    "rendering_kwargs": _FFHQ_RENDERING,
    "num_fp16_res": 0,
    "sr_num_fp16_res": 4,
    "sr_kwargs": {"channel_base": 32768, "channel_max": 512, "fused_modconv_default": "inference_only"},
    "conv_clamp": None,
    "c_dim": 25,
    "img_resolution": 512,
    "img_channels": 3,
}

FFHQ_NEURAL_RENDERING_RESOLUTION = 128


def ffhq_rebalanced_512_128() -> dict:
    """kwargs of EG3D's ffhqrebalanced512-128 checkpoint (neural rendering resolution 128)."""
    return copy.deepcopy(_FFHQ)


def tiny(img_resolution: int = 128, depth_resolution: int = 12) -> dict:
    """A small generator with EG3D's code paths: narrow backbone (8 channels), 2-layer
    mapping, SuperresolutionHybrid2X (128² output; 8XDC for 512), few depth samples."""
    kwargs = copy.deepcopy(_FFHQ)
    kwargs.update(z_dim=16, channel_base=1024, channel_max=8, img_resolution=img_resolution)
    kwargs["sr_kwargs"].update(channel_base=1024, channel_max=8)
    sr = {128: "SuperresolutionHybrid2X", 256: "SuperresolutionHybrid4X", 512: "SuperresolutionHybrid8XDC"}
    if img_resolution not in sr:
        raise ValueError(f"tiny config supports img_resolution 128, 256 or 512, got {img_resolution}")
    kwargs["rendering_kwargs"].update(
        depth_resolution=depth_resolution,
        depth_resolution_importance=depth_resolution,
        image_resolution=img_resolution,
        superresolution_module=f"training.superresolution.{sr[img_resolution]}",
    )
    return kwargs
