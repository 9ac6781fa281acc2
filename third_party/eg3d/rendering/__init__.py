"""Tri-plane volume rendering: rays from cameras, plane sampling, decoding, ray marching."""
from .decoder import OSGDecoder
from .ray_marcher import MipRayMarcher2
from .ray_sampler import RaySampler, get_ray_limits_box
from .renderer import ImportanceRenderer, generate_planes, project_onto_planes, sample_from_planes

__all__ = [
    "ImportanceRenderer",
    "MipRayMarcher2",
    "OSGDecoder",
    "RaySampler",
    "generate_planes",
    "get_ray_limits_box",
    "project_onto_planes",
    "sample_from_planes",
]
