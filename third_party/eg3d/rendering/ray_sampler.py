"""Per-pixel camera rays from [N,4,4] cam2world matrices and normalised [N,3,3] intrinsics."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RaySampler(nn.Module):
    """One ray per pixel centre of a resolution×resolution image (row-major, m = h·R + w)."""

    def forward(self, cam2world_matrix: torch.Tensor, intrinsics: torch.Tensor, resolution: int):
        """Returns ray origins and unit directions, both [N, resolution², 3]."""
        n, m = cam2world_matrix.shape[0], resolution**2
        device = cam2world_matrix.device
        cam_locs_world = cam2world_matrix[:, :3, 3]
        fx = intrinsics[:, 0, 0].unsqueeze(-1)
        fy = intrinsics[:, 1, 1].unsqueeze(-1)
        cx = intrinsics[:, 0, 2].unsqueeze(-1)
        cy = intrinsics[:, 1, 2].unsqueeze(-1)
        sk = intrinsics[:, 0, 1].unsqueeze(-1)

        pixels = torch.arange(resolution, dtype=torch.float32, device=device)
        uv = torch.stack(torch.meshgrid(pixels, pixels, indexing="ij")) * (1.0 / resolution) + (0.5 / resolution)
        uv = uv.flip(0).reshape(2, -1).transpose(1, 0).unsqueeze(0).repeat(n, 1, 1)

        x_cam = uv[:, :, 0].view(n, -1)
        y_cam = uv[:, :, 1].view(n, -1)
        z_cam = torch.ones((n, m), device=device)
        x_lift = (x_cam - cx + cy * sk / fy - sk * y_cam / fy) / fx * z_cam
        y_lift = (y_cam - cy) / fy * z_cam
        cam_rel_points = torch.stack((x_lift, y_lift, z_cam, torch.ones_like(z_cam)), dim=-1)

        world_rel_points = torch.bmm(cam2world_matrix, cam_rel_points.permute(0, 2, 1)).permute(0, 2, 1)[:, :, :3]
        ray_dirs = F.normalize(world_rel_points - cam_locs_world[:, None, :], dim=2)
        ray_origins = cam_locs_world.unsqueeze(1).repeat(1, ray_dirs.shape[1], 1)
        return ray_origins, ray_dirs


def get_ray_limits_box(rays_o: torch.Tensor, rays_d: torch.Tensor, box_side_length: float):
    """Entry and exit distances of rays through the axis-aligned cube of side `box_side_length`
    centred at the origin (slab method). Rays that miss get tmin = -1, tmax = -2. Element-wise
    selections only: no host copy, no wait for the GPU."""
    shape = rays_o.shape
    rays_o = rays_o.detach().reshape(-1, 3)
    rays_d = rays_d.detach().reshape(-1, 3)
    half = torch.full((), box_side_length / 2, dtype=rays_o.dtype, device=rays_o.device)

    invdir = 1 / rays_d

    def slab(axis):
        negative = invdir[..., axis] < 0  # the ray enters through the +half face
        near = torch.where(negative, half, -half)
        far = torch.where(negative, -half, half)
        lo = (near - rays_o[..., axis]) * invdir[..., axis]
        hi = (far - rays_o[..., axis]) * invdir[..., axis]
        return lo, hi

    tmin, tmax = slab(0)
    tymin, tymax = slab(1)
    is_valid = ~torch.logical_or(tmin > tymax, tymin > tmax)
    tmin = torch.max(tmin, tymin)
    tmax = torch.min(tmax, tymax)
    tzmin, tzmax = slab(2)
    is_valid = is_valid & ~torch.logical_or(tmin > tzmax, tzmin > tmax)
    tmin = torch.max(tmin, tzmin)
    tmax = torch.min(tmax, tzmax)

    tmin = torch.where(is_valid, tmin, -1)
    tmax = torch.where(is_valid, tmax, -2)
    return tmin.reshape(*shape[:-1], 1), tmax.reshape(*shape[:-1], 1)
