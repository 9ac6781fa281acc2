"""Generators of awkward image files (written with Pillow into a test's tmp_path), shared by the
image-loading tests and the command-line tests.

``REFUSED``: name -> (writer, words the one-line error must contain).
``CONVERTED``: name -> (writer, expected RGB of pixel (0, 0) or None, words a note must contain or None).
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
from PIL import Image

Writer = Callable[[Path], Path]


def _jpeg_bytes(size=(64, 48), color=(200, 30, 40)) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    arr = np.clip(np.array(color)[None, None] + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png16_rgb(width: int, height: int, rgb16) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), every pixel ``rgb16``."""
    row = b"\x00" + struct.pack(">HHH", *rgb16) * width
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * height))
            + _chunk(b"IEND", b""))


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + data + _chunk(b"IEND", b"")


def _write(name: str, data: bytes) -> Writer:
    def writer(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return writer


def _missing(tmp: Path) -> Path:
    return tmp / "no_such_photo.jpg"


def _directory(tmp: Path) -> Path:
    path = tmp / "a_folder.jpg"
    path.mkdir()
    return path


def _save(name: str, make: Callable[[], Image.Image], **params) -> Writer:
    def writer(tmp: Path) -> Path:
        path = tmp / name
        make().save(path, **params)
        return path
    return writer


def _animated(tmp: Path) -> Path:
    path = tmp / "animated.gif"
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def _palette_transparent() -> Image.Image:
    img = Image.new("P", (40, 40), 0)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.info["transparency"] = 0
    return img


def _palette() -> Image.Image:
    img = Image.new("P", (40, 40), 1)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    return img


REFUSED: Dict[str, Tuple[Writer, Tuple[str, ...]]] = {
    "missing": (_missing, ("does not exist",)),
    "directory": (_directory, ("is a directory",)),
    "empty": (_write("empty.jpg", b""), ("empty", "0 bytes")),
    "not_an_image": (_write("notes.jpg", b"this is a text file, not a photo\n" * 20), ("not an image",)),
    "truncated_jpeg": (_write("cut.jpg", _jpeg_bytes((256, 256))[:1500]), ("truncated",)),
    "truncated_png": (_write("cut.png", _png_bytes(Image.new("RGB", (200, 200), (9, 99, 199)).effect_spread(3))[:300]),
                      ("truncated",)),
    "bomb_80mp": (_write("bomb80.png", bomb_png(10000, 8000)), ("decompression bomb", "80.0 MP", "64 MP")),
    "bomb_400mp": (_write("bomb400.png", bomb_png()), ("decompression bomb",)),
    "too_small": (_save("tiny.png", lambda: Image.new("RGB", (20, 20), (128, 128, 128))), ("too small",)),
}

CONVERTED: Dict[str, Tuple[Writer, Optional[Tuple[int, int, int]], Optional[str]]] = {
    "animated_gif": (_animated, (255, 0, 0), "first frame of 3"),
    "cmyk_jpeg": (_save("cmyk.jpg", lambda: Image.new("CMYK", (40, 40), (0, 255, 255, 0)), quality=95), (255, 0, 0),
                  "CMYK"),
    "gray16_png": (_save("gray16.png", lambda: Image.fromarray(np.full((40, 40), 32896, np.uint16))), (128, 128, 128),
                   "16-bit"),
    "rgb16_png": (_write("rgb16.png", png16_rgb(40, 40, (65535, 32896, 0))), (255, 128, 0), None),
    "palette": (_save("palette.png", _palette), (10, 200, 30), "palette"),
    "palette_transparent": (_save("palette_t.png", _palette_transparent), (255, 255, 255), "transparency"),
    "rgba": (_save("rgba.png", lambda: Image.new("RGBA", (40, 40), (255, 0, 0, 128))), (255, 127, 127), "transparency"),
    "gray_alpha": (_save("la.png", lambda: Image.new("LA", (40, 40), (0, 0))), (255, 255, 255), "transparency"),
    "grayscale": (_save("gray.png", lambda: Image.new("L", (40, 40), 77)), (77, 77, 77), "grayscale"),
    "bilevel": (_save("bw.png", lambda: Image.new("1", (40, 40), 1)), (255, 255, 255), "grayscale"),
    "float_tiff": (_save("float.tif", lambda: Image.fromarray(np.full((40, 40), 0.5, np.float32))), (128, 128, 128),
                   "floating-point"),
}
