"""EG3D's tri-plane generator: a StyleGAN2 backbone emits three 32-channel feature planes,
a volume renderer turns them into a low-resolution feature image, and a super-resolution
module produces the final image. Constructor and state_dict match the official class.

``plane_resolution`` (default 256, the official value) is our one addition: the tri-planes'
side. Smaller planes (e.g. 64) keep every code path but cost far less on a CPU (the toy world
uses it); it is recorded in ``init_kwargs`` only when it differs from 256, so official
configurations stay byte-identical."""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn
from torch.profiler import record_function

from .rendering import ImportanceRenderer, OSGDecoder, RaySampler
from .superresolution import superresolution_class
from .synthesis import StyleGAN2Backbone

PLANE_CHANNELS = 32
BACKBONE_RESOLUTION = 256


class TriPlaneGenerator(nn.Module):
    """(z, c) -> {'image', 'image_raw', 'image_depth'}; c is [N,25] camera parameters
    (16 cam2world values, row-major, then 9 normalised intrinsics)."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        sr_num_fp16_res: int = 0,
        mapping_kwargs: Optional[dict] = None,
        rendering_kwargs: Optional[dict] = None,
        sr_kwargs: Optional[dict] = None,
        plane_resolution: int = BACKBONE_RESOLUTION,
        **synthesis_kwargs,
    ):
        super().__init__()
        # Constructor arguments, as official persistent objects record them (init_args/init_kwargs).
        self.init_args: tuple = ()
        self.init_kwargs: dict = copy.deepcopy(dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            sr_num_fp16_res=sr_num_fp16_res, mapping_kwargs=mapping_kwargs or {}, rendering_kwargs=rendering_kwargs or {},
            sr_kwargs=sr_kwargs or {}, **synthesis_kwargs,
        ))
        if plane_resolution != BACKBONE_RESOLUTION:
            self.init_kwargs["plane_resolution"] = plane_resolution
        rendering_kwargs = dict(rendering_kwargs or {})
        for key in ("superresolution_module", "sr_antialias"):
            if key not in rendering_kwargs:
                raise ValueError(f"rendering_kwargs needs {key!r}")
        sr_class = superresolution_class(rendering_kwargs["superresolution_module"])
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.renderer = ImportanceRenderer()
        self.ray_sampler = RaySampler()
        self.backbone = StyleGAN2Backbone(
            z_dim, c_dim, w_dim, img_resolution=plane_resolution, img_channels=PLANE_CHANNELS * 3,
            mapping_kwargs=mapping_kwargs, **synthesis_kwargs,
        )
        self.superresolution = sr_class(
            channels=PLANE_CHANNELS, img_resolution=img_resolution, sr_num_fp16_res=sr_num_fp16_res,
            sr_antialias=rendering_kwargs["sr_antialias"], **(sr_kwargs or {}),
        )
        self.decoder = OSGDecoder(
            PLANE_CHANNELS,
            {"decoder_lr_mul": rendering_kwargs.get("decoder_lr_mul", 1), "decoder_output_dim": PLANE_CHANNELS},
        )
        self.neural_rendering_resolution = 64
        self.rendering_kwargs = rendering_kwargs
        self._last_planes = None

    @property
    def num_ws(self) -> int:
        return self.backbone.num_ws

    # ------------------------------------------------------------------ mapping
    def mapping(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1,
        truncation_cutoff: Optional[int] = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """(z [N,z_dim], c [N,25]) -> ws [N, num_ws, w_dim]. The camera conditioning is
        zeroed if `c_gen_conditioning_zero` and scaled by `c_scale` (0 when absent, as upstream)."""
        self._check_camera(c, z.shape[0] if z is not None else None)
        if self.rendering_kwargs.get("c_gen_conditioning_zero", False):
            c = torch.zeros_like(c)
        return self.backbone.mapping(
            z, c * self.rendering_kwargs.get("c_scale", 0), truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff, update_emas=update_emas,
        )

    # ---------------------------------------------------------------- synthesis
    def get_planes(
        self,
        ws: torch.Tensor,
        noise_mode: str = "random",
        generator: Optional[torch.Generator] = None,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        """ws -> tri-planes [N, 3, 32, R, R] (R = plane_resolution, 256 by default)."""
        if generator is not None:
            synthesis_kwargs["noise_generator"] = generator
        planes = self.backbone.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)
        return planes.view(len(planes), 3, PLANE_CHANNELS, planes.shape[-2], planes.shape[-1])

    def synthesis(
        self,
        ws: torch.Tensor,
        c: torch.Tensor,
        neural_rendering_resolution: Optional[int] = None,
        noise_mode: str = "random",
        deterministic: bool = False,
        update_emas: bool = False,
        cache_backbone: bool = False,
        use_cached_backbone: bool = False,
        generator: Optional[torch.Generator] = None,
        return_planes: bool = False,
        return_internals: bool = False,
        **synthesis_kwargs,
    ) -> dict:
        """Render ws from cameras c.

        noise_mode: backbone noise, 'random' (upstream default), 'const' or 'none'; the
        super-resolution always uses rendering_kwargs['superresolution_noise_mode'].
        deterministic: fixed stratified jitter and importance uniforms (see README).
        generator: RNG for every random draw of this call (default: the global RNG), or a
        recorder / replay of pre-drawn numbers (eg3d.randomness: draws made ahead of the call).
        return_planes: also return the tri-planes [N,3,32,256,256] under 'planes' (what
        upstream's get_planes(ws) computes, here from the same backbone pass).
        Like upstream, a given neural_rendering_resolution becomes the new default.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        self._check_camera(c, ws.shape[0])
        cam2world_matrix = c[:, :16].view(-1, 4, 4)
        intrinsics = c[:, 16:25].view(-1, 3, 3)
        if neural_rendering_resolution is None:
            neural_rendering_resolution = self.neural_rendering_resolution
        else:
            self.neural_rendering_resolution = neural_rendering_resolution

        ray_origins, ray_directions = self.ray_sampler(cam2world_matrix, intrinsics, neural_rendering_resolution)
        n = ray_origins.shape[0]

        if use_cached_backbone and self._last_planes is not None:
            planes = self._last_planes
        else:
            with record_function("eg3d.backbone"):
                planes = self.get_planes(ws, noise_mode=noise_mode, generator=generator, update_emas=update_emas,
                                         **synthesis_kwargs)
        if cache_backbone:
            self._last_planes = planes

        with record_function("eg3d.renderer"):
            rendered = self.renderer(
                planes, self.decoder, ray_origins, ray_directions, self.rendering_kwargs,
                deterministic=deterministic, generator=generator, return_internals=return_internals,
            )
        feature_samples, depth_samples, weights_samples = rendered[:3]

        h = w = neural_rendering_resolution
        feature_image = feature_samples.permute(0, 2, 1).reshape(n, feature_samples.shape[-1], h, w).contiguous()
        depth_image = depth_samples.permute(0, 2, 1).reshape(n, 1, h, w)
        rgb_image = feature_image[:, :3]
        sr_kwargs = {k: v for k, v in synthesis_kwargs.items() if k != "noise_mode"}
        if generator is not None:  # random super-resolution noise (not EG3D's FFHQ setting) draws from it too
            sr_kwargs["noise_generator"] = generator
        with record_function("eg3d.superresolution"):
            sr_out = self.superresolution(
                rgb_image, feature_image, ws, noise_mode=self.rendering_kwargs["superresolution_noise_mode"],
                return_internals=return_internals, **sr_kwargs,
            )
        if not return_internals:
            out = {"image": sr_out, "image_raw": rgb_image, "image_depth": depth_image}
            if return_planes:
                out["planes"] = planes
            return out
        sr_image, sr_internals = sr_out
        internals = dict(rendered[3])
        internals.update(
            planes=planes, ray_origins=ray_origins, ray_directions=ray_directions,
            feature_samples=feature_samples, depth_samples=depth_samples, weights_samples=weights_samples,
            superresolution=sr_internals,
        )
        out = {"image": sr_image, "image_raw": rgb_image, "image_depth": depth_image, "internals": internals}
        if return_planes:
            out["planes"] = planes
        return out

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1,
        truncation_cutoff: Optional[int] = None,
        neural_rendering_resolution: Optional[int] = None,
        update_emas: bool = False,
        cache_backbone: bool = False,
        use_cached_backbone: bool = False,
        **synthesis_kwargs,
    ) -> dict:
        """mapping followed by synthesis."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(
            ws, c, neural_rendering_resolution=neural_rendering_resolution, update_emas=update_emas,
            cache_backbone=cache_backbone, use_cached_backbone=use_cached_backbone, **synthesis_kwargs,
        )

    # --------------------------------------------------------- density queries
    def sample_mixed(
        self,
        coordinates: torch.Tensor,
        directions: torch.Tensor,
        ws: torch.Tensor,
        noise_mode: str = "random",
        generator: Optional[torch.Generator] = None,
        **synthesis_kwargs,
    ) -> dict:
        """Decode density and features at world points [N,M,3] for given ws (e.g. for meshes)."""
        planes = self.get_planes(ws, noise_mode=noise_mode, generator=generator, **synthesis_kwargs)
        return self.renderer.run_model(planes, self.decoder, coordinates, directions, self.rendering_kwargs,
                                       generator=generator)

    # ------------------------------------------------------------------ helpers
    def _check_camera(self, c: torch.Tensor, batch_size: Optional[int]) -> None:
        if not isinstance(c, torch.Tensor) or c.ndim != 2 or c.shape[1] != 25:
            shape = tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__
            raise ValueError(f"camera parameters c must be [N, 25] (16 cam2world + 9 intrinsics), got {shape}")
        if batch_size is not None and c.shape[0] != batch_size:
            raise ValueError(f"batch sizes differ: {batch_size} latents but {c.shape[0]} cameras")

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, img_resolution={self.img_resolution}, "
            f"neural_rendering_resolution={self.neural_rendering_resolution}"
        )
