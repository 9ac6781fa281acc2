"""EG3D's importance renderer: coarse stratified samples along each ray, decoded from the
tri-planes, then importance samples drawn from the coarse weights, all composited."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import randomness
from ..randomness import Source
from .ray_marcher import MipRayMarcher2
from .ray_sampler import get_ray_limits_box


def generate_planes() -> torch.Tensor:
    """The three plane bases [3,3,3]. Their inverses map (x,y,z) to plane coordinates
    (x,y), (x,z) and (z,x): EG3D's third plane is the XZ plane again, axes swapped."""
    return torch.tensor(
        [
            [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
            [[0, 0, 1], [1, 0, 0], [0, 1, 0]],
        ],
        dtype=torch.float32,
    )


def project_onto_planes(planes: torch.Tensor, coordinates: torch.Tensor,
                        inverse: Optional[torch.Tensor] = None) -> torch.Tensor:
    """coordinates [N,M,3] -> 2-D projections [N·n_planes, M, 2]. `inverse`: torch.linalg.inv(planes)
    when the caller has it already (the inversion checks for errors, which waits for the GPU)."""
    n, m, _ = coordinates.shape
    n_planes = planes.shape[0]
    coordinates = coordinates.unsqueeze(1).expand(-1, n_planes, -1, -1).reshape(n * n_planes, m, 3)
    inverse = torch.linalg.inv(planes) if inverse is None else inverse
    inv_planes = inverse.unsqueeze(0).expand(n, -1, -1, -1).reshape(n * n_planes, 3, 3)
    return torch.bmm(coordinates, inv_planes)[..., :2]


def sample_from_planes(
    plane_axes: torch.Tensor,
    plane_features: torch.Tensor,
    coordinates: torch.Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    box_warp: float = 2,
    inverse_axes: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Bilinearly sample features [N,3,C,H,W] at world points [N,M,3] (scaled by 2/box_warp
    into [-1,1]); returns [N, 3, M, C]. `inverse_axes`: see project_onto_planes."""
    n, n_planes, c, h, w = plane_features.shape
    _, m, _ = coordinates.shape
    plane_features = plane_features.view(n * n_planes, c, h, w)
    coordinates = (2 / box_warp) * coordinates
    projected = project_onto_planes(plane_axes, coordinates, inverse_axes).unsqueeze(1)
    out = F.grid_sample(plane_features, projected.float(), mode=mode, padding_mode=padding_mode, align_corners=False)
    return out.permute(0, 3, 2, 1).reshape(n, n_planes, m, c)


def _linspace_per_ray(start: torch.Tensor, stop: torch.Tensor, num: int) -> torch.Tensor:
    """Evenly spaced values between per-ray tensors start/stop: [num, *start.shape]."""
    steps = torch.arange(num, dtype=torch.float32, device=start.device) / (num - 1)
    steps = steps.reshape([num] + [1] * start.ndim)
    return start[None] + steps * (stop - start)[None]


class ImportanceRenderer(nn.Module):
    """Renders tri-planes along rays. Two random draws (stratified jitter and the
    importance-sampling uniforms) can be replaced by fixed values with `deterministic=True`:
    jitter 0.5 and u = linspace(0, 1, N_importance) (EG3D's own `det` branch).

    A render neither waits for the GPU nor copies from host memory: the planes' inverse is
    computed once, on the CPU, and moves with the module; automatic ray bounds are fixed up
    without reading values."""

    def __init__(self):
        super().__init__()
        self.ray_marcher = MipRayMarcher2()
        self.register_buffer("plane_axes", generate_planes(), persistent=False)
        # torch.linalg.inv(plane_axes). Not a buffer (the state layout stays upstream's); _apply moves it.
        self._inverse_axes = torch.linalg.inv(self.plane_axes)

    def _apply(self, fn, recurse=True):
        module = super()._apply(fn, recurse)
        self._inverse_axes = fn(self._inverse_axes)
        return module

    def inverse_plane_axes(self) -> torch.Tensor:
        """torch.linalg.inv(plane_axes), on the module's device (inverting there would wait for it)."""
        return self._inverse_axes

    def forward(
        self,
        planes: torch.Tensor,
        decoder: nn.Module,
        ray_origins: torch.Tensor,
        ray_directions: torch.Tensor,
        rendering_options: dict,
        deterministic: bool = False,
        generator: Source = None,
        return_internals: bool = False,
    ):
        """planes [N,3,C,H,W], rays [N,M,3] -> (features [N,M,C], depth [N,M,1], opacity [N,M,1]).
        generator: where the random draws come from (see eg3d.randomness)."""
        opts = rendering_options
        ray_start, ray_end = opts["ray_start"], opts["ray_end"]
        if ray_start == "auto" and ray_end == "auto":
            ray_start, ray_end = get_ray_limits_box(ray_origins, ray_directions, box_side_length=opts["box_warp"])
            ray_start, ray_end = fill_invalid_bounds(ray_start, ray_end)
        depths_coarse = self.sample_stratified(
            ray_origins, ray_start, ray_end, opts["depth_resolution"], opts.get("disparity_space_sampling", False),
            deterministic=deterministic, generator=generator,
        )
        batch_size, num_rays, samples_per_ray, _ = depths_coarse.shape

        coords = (ray_origins.unsqueeze(-2) + depths_coarse * ray_directions.unsqueeze(-2)).reshape(batch_size, -1, 3)
        dirs = ray_directions.unsqueeze(-2).expand(-1, -1, samples_per_ray, -1).reshape(batch_size, -1, 3)
        out = self.run_model(planes, decoder, coords, dirs, opts, generator=generator)
        colors_coarse = out["rgb"].reshape(batch_size, num_rays, samples_per_ray, out["rgb"].shape[-1])
        densities_coarse = out["sigma"].reshape(batch_size, num_rays, samples_per_ray, 1)
        internals = {"depths_coarse": depths_coarse, "sigma_coarse": densities_coarse, "rgb_coarse": colors_coarse}

        n_importance = opts["depth_resolution_importance"]
        if n_importance > 0:
            _, _, weights = self.ray_marcher(colors_coarse, densities_coarse, depths_coarse, opts)
            depths_fine = self.sample_importance(
                depths_coarse, weights, n_importance, deterministic=deterministic, generator=generator
            )
            dirs = ray_directions.unsqueeze(-2).expand(-1, -1, n_importance, -1).reshape(batch_size, -1, 3)
            coords = (ray_origins.unsqueeze(-2) + depths_fine * ray_directions.unsqueeze(-2)).reshape(
                batch_size, -1, 3
            )
            out = self.run_model(planes, decoder, coords, dirs, opts, generator=generator)
            colors_fine = out["rgb"].reshape(batch_size, num_rays, n_importance, out["rgb"].shape[-1])
            densities_fine = out["sigma"].reshape(batch_size, num_rays, n_importance, 1)
            internals.update(
                weights_coarse=weights, depths_fine=depths_fine, sigma_fine=densities_fine, rgb_fine=colors_fine
            )
            all_depths, all_colors, all_densities = self.unify_samples(
                depths_coarse, colors_coarse, densities_coarse, depths_fine, colors_fine, densities_fine
            )
            rgb_final, depth_final, weights = self.ray_marcher(all_colors, all_densities, all_depths, opts)
        else:
            rgb_final, depth_final, weights = self.ray_marcher(colors_coarse, densities_coarse, depths_coarse, opts)

        result = (rgb_final, depth_final, weights.sum(2))
        return (*result, internals) if return_internals else result

    def run_model(self, planes, decoder, sample_coordinates, sample_directions, options, generator: Source = None):
        """Sample the planes at the points and decode them ({'rgb', 'sigma'})."""
        features = sample_from_planes(
            self.plane_axes, planes, sample_coordinates, padding_mode="zeros", box_warp=options["box_warp"],
            inverse_axes=self.inverse_plane_axes(),
        )
        out = decoder(features, sample_directions)
        density_noise = options.get("density_noise", 0)
        if density_noise > 0:
            noise = randomness.randn(out["sigma"].shape, generator=generator, device=out["sigma"].device)
            out["sigma"] = out["sigma"] + noise * density_noise
        return out

    @staticmethod
    def unify_samples(depths1, colors1, densities1, depths2, colors2, densities2):
        """Concatenate coarse and fine samples and sort them by depth."""
        all_depths = torch.cat([depths1, depths2], dim=-2)
        all_colors = torch.cat([colors1, colors2], dim=-2)
        all_densities = torch.cat([densities1, densities2], dim=-2)
        _, indices = torch.sort(all_depths, dim=-2)
        all_depths = torch.gather(all_depths, -2, indices)
        all_colors = torch.gather(all_colors, -2, indices.expand(-1, -1, -1, all_colors.shape[-1]))
        all_densities = torch.gather(all_densities, -2, indices.expand(-1, -1, -1, 1))
        return all_depths, all_colors, all_densities

    @staticmethod
    def sample_stratified(
        ray_origins: torch.Tensor,
        ray_start,
        ray_end,
        depth_resolution: int,
        disparity_space_sampling: bool = False,
        deterministic: bool = False,
        generator: Source = None,
    ) -> torch.Tensor:
        """Evenly spaced depths [N,M,D,1] plus a jitter of U(0,1) (or 0.5) times the spacing."""
        n, m, _ = ray_origins.shape
        device = ray_origins.device

        def jitter(like):
            if deterministic:
                return torch.full_like(like, 0.5)
            return randomness.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)

        if disparity_space_sampling:
            depths = torch.linspace(0, 1, depth_resolution, device=device).reshape(1, 1, depth_resolution, 1)
            depths = depths.repeat(n, m, 1, 1)
            depths = depths + jitter(depths) * (1 / (depth_resolution - 1))
            return 1.0 / (1.0 / ray_start * (1.0 - depths) + 1.0 / ray_end * depths)
        if isinstance(ray_start, torch.Tensor):
            depths = _linspace_per_ray(ray_start, ray_end, depth_resolution).permute(1, 2, 0, 3)
            delta = (ray_end - ray_start) / (depth_resolution - 1)
            return depths + jitter(depths) * delta[..., None]
        depths = torch.linspace(ray_start, ray_end, depth_resolution, device=device)
        depths = depths.reshape(1, 1, depth_resolution, 1).repeat(n, m, 1, 1)
        delta = (ray_end - ray_start) / (depth_resolution - 1)
        return depths + jitter(depths) * delta

    def sample_importance(
        self,
        z_vals: torch.Tensor,
        weights: torch.Tensor,
        n_importance: int,
        deterministic: bool = False,
        generator: Source = None,
    ) -> torch.Tensor:
        """Draw `n_importance` depths per ray from the smoothed coarse weights (no gradient).

        Fixes upstream's crash for a single ray in total (it squeezes every dimension)."""
        batch_size, num_rays, samples_per_ray, _ = z_vals.shape
        with torch.no_grad():
            z_vals = z_vals.reshape(batch_size * num_rays, samples_per_ray)
            weights = weights.reshape(batch_size * num_rays, -1)
            weights = F.max_pool1d(weights.unsqueeze(1).float(), 2, 1, padding=1)
            weights = F.avg_pool1d(weights, 2, 1).squeeze(1)
            weights = weights + 0.01
            z_vals_mid = 0.5 * (z_vals[:, :-1] + z_vals[:, 1:])
            samples = self.sample_pdf(
                z_vals_mid, weights[:, 1:-1], n_importance, deterministic=deterministic, generator=generator
            )
        return samples.detach().reshape(batch_size, num_rays, n_importance, 1)

    @staticmethod
    def sample_pdf(
        bins: torch.Tensor,
        weights: torch.Tensor,
        n_importance: int,
        deterministic: bool = False,
        eps: float = 1e-5,
        generator: Source = None,
    ) -> torch.Tensor:
        """Inverse-transform sampling of a piecewise-constant pdf (weights [R,K]) over bin
        edges `bins` [R,≥K+1]; returns [R, n_importance] (not sorted)."""
        n_rays, n_samples = weights.shape
        weights = weights + eps
        pdf = weights / torch.sum(weights, -1, keepdim=True)
        cdf = torch.cumsum(pdf, -1)
        cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1)
        if deterministic:
            u = torch.linspace(0, 1, n_importance, device=bins.device).expand(n_rays, n_importance)
        else:
            u = randomness.rand((n_rays, n_importance), generator=generator, device=bins.device)
        u = u.contiguous()

        inds = torch.searchsorted(cdf, u, right=True)
        below = torch.clamp_min(inds - 1, 0)
        above = torch.clamp_max(inds, n_samples)
        inds_sampled = torch.stack([below, above], -1).view(n_rays, 2 * n_importance)
        cdf_g = torch.gather(cdf, 1, inds_sampled).view(n_rays, n_importance, 2)
        bins_g = torch.gather(bins, 1, inds_sampled).view(n_rays, n_importance, 2)

        denom = cdf_g[..., 1] - cdf_g[..., 0]
        denom = torch.where(denom < eps, torch.ones_like(denom), denom)
        return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def fill_invalid_bounds(ray_start: torch.Tensor, ray_end: torch.Tensor):
    """Rays that miss the box (end <= start) get start = the smallest start of the rays that hit
    it and end = the largest such start (upstream's choice); unchanged when no ray hits. Written
    with torch.where instead of boolean indexing, so it never waits for the GPU."""
    valid = ray_end > ray_start
    any_valid = valid.any()
    smallest = torch.where(valid, ray_start, torch.full_like(ray_start, float("inf"))).amin()
    largest = torch.where(valid, ray_start, torch.full_like(ray_start, float("-inf"))).amax()
    fill = torch.logical_and(~valid, any_valid)
    return torch.where(fill, smallest, ray_start), torch.where(fill, largest, ray_end)
