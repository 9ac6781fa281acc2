"""The toy world's generator configuration: EG3D's tiny config on 64² tri-planes.

Same classes and code paths as the real generator (mapping with a 128-wide hidden layer, StyleGAN2
tri-plane backbone with 32 channels, importance renderer, SuperresolutionHybrid2X to 128²). z has 16 numbers; w keeps 512 wide
like EG3D's (W+ ``[N,10,512]``: 10 layers instead of 14, from the smaller tri-planes), and UFO's d = 30
is measured in a W space rescaled to a known spread (:func:`scale_w_space`; median ||w - w_avg||
over W+ = 60). Renders use a neural rendering
resolution of 32 (the super-resolution resizes it to 64 first) and 8+8 depth samples: 2 CPU cores train
it in about 48 minutes and an erase step takes a fraction of a second. The camera does not condition the
mapping (``c_gen_conditioning_zero``): a head's identity is the same from every view.
"""
from __future__ import annotations

from eg3d.configs import tiny

NEURAL_RENDERING_RESOLUTION = 32
PLANE_RESOLUTION = 64
DEPTH_SAMPLES = 8


def toy_generator_kwargs() -> dict:
    """Constructor kwargs of the toy generator (``eg3d.TriPlaneGenerator(**kwargs)``)."""
    kwargs = tiny(img_resolution=128, depth_resolution=DEPTH_SAMPLES)
    kwargs.update(plane_resolution=PLANE_RESOLUTION, channel_base=4096, channel_max=32)
    kwargs["mapping_kwargs"] = {"num_layers": 2, "lr_multiplier": 1.0, "layer_features": 128}
    kwargs["rendering_kwargs"].update(c_gen_conditioning_zero=True, ray_start=2.2, ray_end=3.2)
    return kwargs

W_PLUS_SPREAD = 60.0  # median ||w - w_avg|| over the whole W+ tensor after training (EG3D-like scale)


def scale_w_space(G, factor: float) -> None:
    """Multiply every latent of ``G`` by ``factor`` (> 0) without changing a single render: the
    mapping's last layer (leaky ReLU is positively homogeneous) and ``w_avg`` are scaled up, every
    affine layer that reads w (backbone and super-resolution) is scaled down. Training leaves the
    toy W space far smaller than EG3D's; this puts it on a scale where UFO's d = 30 and the
    adjacency radius 15 mean what they mean for EG3D."""
    import torch

    if not factor > 0:
        raise ValueError(f"factor must be positive, got {factor}")
    mapping = G.backbone.mapping
    last = getattr(mapping, f"fc{mapping.num_layers - 1}")
    with torch.no_grad():
        last.weight.mul_(factor)
        last.bias.mul_(factor)
        mapping.w_avg.mul_(factor)
        for name, module in G.named_modules():
            if name.endswith(".affine"):
                module.weight.div_(factor)
