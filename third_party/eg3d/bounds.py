"""Plausibility bounds for EG3D files from untrusted sources, checked before anything is built.

A checkpoint's constructor arguments and rendering options decide how much memory building
and rendering the generator takes, and they are not covered by any weights hash. The
released configurations (:mod:`eg3d.configs`) sit well inside these bounds; a file outside
them is refused with :class:`GeneratorConfigError` (a ``ValueError``) naming the field.
The reader limits (tensor size, module depth) apply to :mod:`eg3d.network_pkl`.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Optional

#: Largest tensor a file may hold (elements). EG3D's largest is 2.4 M (512x512x3x3 weights).
MAX_TENSOR_ELEMENTS = 1 << 28
#: Deepest module tree (``_modules`` inside ``_modules``); EG3D's generator is 6 deep.
MAX_MODULE_DEPTH = 32
#: Containers inside containers in a pickle's plain data (kwargs, EasyDicts, module state).
MAX_NESTING = 100

#: Constructor and rendering bounds: field -> (smallest, largest). Released: 512 / 512 / 32768 /
#: 2-layer mapping / 48+48 depth samples / neural rendering resolution 128.
INT_BOUNDS = {
    "z_dim": (1, 1024),
    "w_dim": (1, 1024),
    "c_dim": (0, 64),
    "img_channels": (1, 4),
    "channel_base": (1, 1 << 17),
    "channel_max": (1, 1024),
    "num_fp16_res": (0, 16),
    "sr_num_fp16_res": (0, 16),
    "mapping_kwargs.num_layers": (1, 16),
    "mapping_kwargs.embed_features": (0, 1024),
    "mapping_kwargs.layer_features": (1, 1024),
    "sr_kwargs.channel_base": (1, 1 << 17),
    "sr_kwargs.channel_max": (1, 1024),
    "rendering_kwargs.depth_resolution": (1, 512),
    "rendering_kwargs.depth_resolution_importance": (0, 512),
    "neural_rendering_resolution": (4, 512),
}
IMG_RESOLUTIONS = (128, 256, 512)
PLANE_RESOLUTIONS = (16, 32, 64, 128, 256)  # tri-plane sides (256 official; smaller for the toy world)
#: rendering_kwargs every render reads.
REQUIRED_RENDERING = ("superresolution_module", "sr_antialias", "depth_resolution", "depth_resolution_importance",
                      "ray_start", "ray_end", "box_warp", "clamp_mode", "superresolution_noise_mode")
_OPTIONAL_NUMBERS = ("avg_camera_radius", "c_scale", "decoder_lr_mul", "density_noise", "gpc_reg_prob",
                     "density_reg", "density_reg_p_dist")


class GeneratorConfigError(ValueError):
    """Constructor arguments or rendering options outside what a real EG3D generator uses."""


def _fail(field: str, message: str) -> GeneratorConfigError:
    return GeneratorConfigError(f"{field}: {message}")


def _int(value: Any, field: str, bound: Optional[str] = None) -> int:
    low, high = INT_BOUNDS[bound or field]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(field, f"expected an integer, got {_show(value)}")
    if not low <= value <= high:
        raise _fail(field, f"{value} is outside the plausible range {low}..{high}")
    return int(value)


def _number(value: Any, field: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise _fail(field, f"expected a finite number, got {_show(value)}")
    if positive and value <= 0:
        raise _fail(field, f"must be positive, got {value}")
    return float(value)


def _mapping(value: Any, field: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _fail(field, f"expected a mapping of options, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


def check_rendering_kwargs(rendering: Any, field: str = "rendering_kwargs") -> None:
    """The options every render reads are present and within bounds."""
    rendering = _mapping(rendering, field)
    missing = [k for k in REQUIRED_RENDERING if k not in rendering]
    if missing:
        raise _fail(field, f"missing {', '.join(missing)}")
    for key in ("depth_resolution", "depth_resolution_importance"):
        _int(rendering[key], f"{field}.{key}", f"rendering_kwargs.{key}")
    for key in ("ray_start", "ray_end"):
        if rendering[key] != "auto":
            _number(rendering[key], f"{field}.{key}")
    _number(rendering["box_warp"], f"{field}.box_warp", positive=True)
    for key in ("superresolution_module", "clamp_mode", "superresolution_noise_mode"):
        if not isinstance(rendering[key], str):
            raise _fail(f"{field}.{key}", f"expected text, got {_show(rendering[key])}")
    for key in _OPTIONAL_NUMBERS:
        if rendering.get(key) is not None:
            _number(rendering[key], f"{field}.{key}")


_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


def check_generator_config(init_args: Any, init_kwargs: Any, rendering_kwargs: Any = None,
                           neural_rendering_resolution: Optional[Any] = None) -> None:
    """Refuse constructor arguments (and the rendering options and neural rendering resolution
    a file sets after construction) that no real EG3D generator has, before building anything."""
    if not isinstance(init_args, (tuple, list)) or len(init_args) > len(_POSITIONAL):
        raise _fail("init_args", f"expected at most {len(_POSITIONAL)} positional arguments, got {_show(init_args)}")
    kwargs = dict(_mapping(init_kwargs, "init_kwargs"))
    for name, value in zip(_POSITIONAL, init_args):
        if name in kwargs:
            raise _fail(f"init_kwargs.{name}", "given both positionally and by name")
        kwargs[name] = value
    for name in ("z_dim", "c_dim", "w_dim", "img_channels"):
        if name not in kwargs:
            raise _fail(f"init_kwargs.{name}", "missing")
        _int(kwargs[name], f"init_kwargs.{name}", name)
    if kwargs.get("img_resolution") not in IMG_RESOLUTIONS or isinstance(kwargs.get("img_resolution"), bool):
        raise _fail("init_kwargs.img_resolution", f"expected one of {IMG_RESOLUTIONS}, got "
                                                  f"{_show(kwargs.get('img_resolution'))}")
    plane = kwargs.get("plane_resolution", 256)
    if plane not in PLANE_RESOLUTIONS or isinstance(plane, bool):
        raise _fail("init_kwargs.plane_resolution", f"expected one of {PLANE_RESOLUTIONS}, got {_show(plane)}")
    for name in ("channel_base", "channel_max", "num_fp16_res", "sr_num_fp16_res"):
        if name in kwargs:
            _int(kwargs[name], f"init_kwargs.{name}", name)
    if kwargs.get("conv_clamp") is not None:
        _number(kwargs["conv_clamp"], "init_kwargs.conv_clamp", positive=True)
    for group in ("mapping_kwargs", "sr_kwargs"):
        options = _mapping(kwargs.get(group), f"init_kwargs.{group}")
        for key, value in options.items():
            if f"{group}.{key}" in INT_BOUNDS and value is not None:
                _int(value, f"init_kwargs.{group}.{key}", f"{group}.{key}")
        for key in ("lr_multiplier", "w_avg_beta"):
            if group == "mapping_kwargs" and options.get(key) is not None:
                _number(options[key], f"init_kwargs.mapping_kwargs.{key}")
    check_rendering_kwargs(kwargs.get("rendering_kwargs"), "init_kwargs.rendering_kwargs")
    if rendering_kwargs is not None:
        check_rendering_kwargs(rendering_kwargs)
    if neural_rendering_resolution is not None:
        _int(neural_rendering_resolution, "neural_rendering_resolution")
