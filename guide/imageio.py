"""Images at the toolkit's edge: robust loading, and the one place uint8 <-> tensor conversion lives.

Inside the toolkit images are float32 tensors ``[N, 3, H, W]`` in [-1, 1]; files and PIL images are
8-bit RGB. This module is the only bridge between the two:

* :func:`uint8_to_tensor` -- ``x / 127.5 - 1`` (GUIDE's ``image_to_tensor``; the same values as
  ``ToTensor`` + ``Normalize(0.5, 0.5)`` up to float rounding);
* :func:`tensor_to_uint8` -- ``clamp(t * 127.5 + 128, 0, 255)`` truncated to uint8 (GUIDE's
  ``tensor_to_image``).

:func:`load_image` reads a photo from disk (or normalises an in-memory image) and either returns a
fully decoded 8-bit RGB :class:`PIL.Image.Image` with a list of notes about what was done to it, or
raises :class:`ImageLoadError` (a :class:`~guide.errors.GuideError`, printed as one line) for:
missing path, directory, empty file, not an image, truncated / corrupt data, more than
``max_pixels`` pixels (decompression bombs; default :data:`DEFAULT_MAX_PIXELS` = 64 MP) and images
smaller than ``min_side`` pixels. Conversions, each reported in ``notes`` where it changes content:

* multi-frame files (animated GIF/PNG/WebP, multi-page TIFF, MPO): the first frame is used;
* EXIF orientation: honoured (the image is rotated / mirrored upright);
* grayscale, bilevel, palette, CMYK, YCbCr, LAB, HSV: converted to RGB;
* alpha (RGBA, LA, PA, palette with transparency): composited onto white;
* 16-bit (``I;16*``, ``I``) and float (``F``) images: rescaled to 8 bits, not clipped.

Pillow refuses images above twice ``PIL.Image.MAX_IMAGE_PIXELS`` (about 179 MP) by itself; a
``max_pixels`` above that cannot raise the limit (that would mean changing Pillow's global state).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from guide.errors import GuideError

__all__ = [
    "ALPHA_BACKGROUND",
    "DEFAULT_MAX_PIXELS",
    "MIN_IMAGE_SIDE",
    "ImageLoadError",
    "LoadedImage",
    "load_image",
    "normalize_image",
    "tensor_to_pil",
    "tensor_to_uint8",
    "to_rgb_uint8",
    "uint8_to_tensor",
]

PathLike = Union[str, "os.PathLike[str]"]
ImageSource = Union[PathLike, Image.Image, np.ndarray, torch.Tensor]

DEFAULT_MAX_PIXELS = 64_000_000
MIN_IMAGE_SIDE = 32
ALPHA_BACKGROUND: Tuple[int, int, int] = (255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageLoadError(GuideError):
    """A photo that cannot be used: missing, unreadable, not an image, truncated, too big or too small."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo: ``image`` (8-bit RGB, upright), where it came from and what was done to it."""

    image: Image.Image
    source: str
    notes: Tuple[str, ...]
    original_mode: str
    frames: int = 1

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height) of :attr:`image`."""
        return self.image.size


# ------------------------------------------------------------------------------------- loading


def load_image(
    source: ImageSource,
    *,
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
    min_side: int = MIN_IMAGE_SIDE,
) -> LoadedImage:
    """Read ``source`` (a path, PIL image, ``[H, W(, C)]`` uint8 array or tensor) as upright 8-bit RGB.

    ``max_pixels=None`` disables the toolkit's size limit (Pillow's own still applies).
    Raises :class:`ImageLoadError` with a one-line message for every bad input (see module doc).
    """
    if isinstance(source, (str, os.PathLike)):
        return _load_path(Path(source), max_pixels, min_side)
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or "image"
        _check_pixels(source.size, max_pixels, name)
        rgb, notes, frames = _normalize(source, name)
    else:
        name = "image"
        rgb, notes, frames = Image.fromarray(to_rgb_uint8(source)), [], 1
        _check_pixels(rgb.size, max_pixels, name)
    _check_small(rgb.size, min_side, name)
    return LoadedImage(rgb, name, tuple(notes), getattr(source, "mode", "RGB"), frames)


def _load_path(path: Path, max_pixels: Optional[int], min_side: int) -> LoadedImage:
    if not path.exists():
        raise ImageLoadError(f"image {path} does not exist")
    if path.is_dir():
        raise ImageLoadError(f"{path} is a directory, not an image file")
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError(f"image {path} is empty (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_pixels(img.size, max_pixels, str(path))
                rgb, notes, frames = _normalize(img, str(path))
                mode = img.mode
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"image {path} is refused as a possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{path} is not an image file Pillow can read") from None
    except PermissionError:
        raise ImageLoadError(f"image {path} cannot be read (permission denied)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"image {path} is truncated or corrupt ({_first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file can trip any decoder: one line, never a traceback
        raise ImageLoadError(f"image {path} cannot be decoded ({type(exc).__name__}: {_first_line(exc)})") from None
    _check_small(rgb.size, min_side, str(path))
    return LoadedImage(rgb, str(path), tuple(notes), mode, frames)


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160] or type(exc).__name__


def _check_pixels(size: Tuple[int, int], max_pixels: Optional[int], name: str) -> None:
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageLoadError(
            f"image {name} has {width}x{height} = {width * height / 1e6:.1f} MP, above the limit of "
            f"{max_pixels / 1e6:g} MP (refused as a possible decompression bomb; raise it with --max-pixels)")


def _check_small(size: Tuple[int, int], min_side: int, name: str) -> None:
    if min(size) < min_side:
        raise ImageLoadError(
            f"image {name} is too small ({size[0]}x{size[1]}) for a usable face: need at least {min_side} px per side")


# ----------------------------------------------------------------------------------- conversion


def normalize_image(image: Image.Image, name: str = "image") -> Tuple[Image.Image, List[str]]:
    """``image`` as a decoded, upright 8-bit RGB copy plus notes (first frame, EXIF, mode conversion)."""
    rgb, notes, _ = _normalize(image, name)
    return rgb, notes


def _normalize(img: Image.Image, name: str) -> Tuple[Image.Image, List[str], int]:
    notes: List[str] = []
    frames = int(getattr(img, "n_frames", 1) or 1)
    if frames > 1:
        img.seek(0)
        notes.append(f"used the first frame of {frames}")
    img.load()
    orientation = _orientation(img)
    if orientation not in (None, 1):
        img = ImageOps.exif_transpose(img)
        notes.append(f"rotated upright per EXIF orientation {orientation}")
    rgb, note = _to_rgb(img)
    if note:
        notes.append(note)
    return rgb, notes, frames


def _orientation(img: Image.Image) -> Optional[int]:
    try:
        value = img.getexif().get(0x0112)
    except Exception:  # malformed EXIF must not make a readable photo unusable
        return None
    return int(value) if isinstance(value, int) else None


def _to_rgb(img: Image.Image) -> Tuple[Image.Image, Optional[str]]:
    """(8-bit RGB copy, note or None) for any Pillow mode."""
    mode = img.mode
    if mode == "RGB":
        return img.copy(), None
    if mode in _SIXTEEN_BIT_MODES or mode.startswith("I;16"):
        values = np.asarray(img).astype(np.float64)
        if values.max(initial=0) > 255 or mode != "I":
            gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
            return Image.fromarray(gray).convert("RGB"), f"converted {mode} (16-bit) to 8-bit RGB"
        gray = np.clip(values, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB"), f"converted {mode} to RGB"
    if mode == "F":
        values = np.asarray(img).astype(np.float64)
        values = values * 255.0 if np.nanmax(values, initial=0) <= 1.0 else values
        gray = np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB"), "converted a floating-point image to 8-bit RGB"
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        flat = Image.alpha_composite(background, rgba).convert("RGB")
        return flat, f"flattened the {mode} image's transparency onto white"
    if mode in ("1", "L"):
        return img.convert("L").convert("RGB"), "converted grayscale to RGB"
    if mode == "P":
        return img.convert("RGB"), "converted the palette image to RGB"
    return img.convert("RGB"), f"converted {mode} to RGB"


def to_rgb_uint8(image: Union[Image.Image, np.ndarray, torch.Tensor]) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB from a PIL image (any mode, see :func:`load_image`) or a uint8 array/tensor.

    Arrays: ``[H, W]`` / ``[H, W, 1]`` gray is replicated, ``[H, W, 4]`` is composited onto white,
    other dtypes are refused (``ValueError``).
    """
    if isinstance(image, Image.Image):
        return np.asarray(_to_rgb(image)[0])
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an [H, W, 3] RGB image, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        return np.asarray(_to_rgb(Image.fromarray(array, "RGBA"))[0])
    return np.ascontiguousarray(array)


def uint8_to_tensor(
    images: Union[Image.Image, np.ndarray, Sequence[Union[Image.Image, np.ndarray]]],
    device: Union[str, torch.device] = "cpu",
) -> torch.Tensor:
    """float32 ``[N, 3, H, W]`` in [-1, 1] (``x / 127.5 - 1``) from RGB images or ``[(N,) H, W, 3]`` uint8."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        batch = images
    elif isinstance(images, (Image.Image, np.ndarray, torch.Tensor)):
        batch = to_rgb_uint8(images)[None]
    else:
        batch = np.stack([to_rgb_uint8(image) for image in images])
    if batch.dtype != np.uint8 or batch.shape[-1] != 3:
        raise ValueError(f"expected uint8 images [N, H, W, 3], got {batch.dtype} {batch.shape}")
    x = torch.from_numpy(np.require(batch, requirements=["C", "W"])).to(device=device).permute(0, 3, 1, 2)
    return x.to(torch.float32) / 127.5 - 1


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 from ``[N, 3, H, W]`` (or ``[3, H, W]``) in [-1, 1]: ``clamp(t*127.5+128)``, truncated."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [N, 3, H, W], got {list(images.shape)}")
    out = (images.detach().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return out.cpu().numpy()


def tensor_to_pil(images: torch.Tensor) -> List[Image.Image]:
    """One RGB PIL image per batch entry of ``[N, 3, H, W]`` in [-1, 1]."""
    return [Image.fromarray(array, "RGB") for array in tensor_to_uint8(images)]
