"""guide.imageio: robust loading (one-line errors, conversions, notes) and the uint8 <-> tensor bridge."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from guide.errors import GuideError
from guide.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    load_image,
    tensor_to_pil,
    tensor_to_uint8,
    to_rgb_uint8,
    uint8_to_tensor,
)

from .preprocess.badimages import CONVERTED, REFUSED


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_files_are_refused_with_one_line(tmp_path, case):
    writer, words = REFUSED[case]
    path = writer(tmp_path)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = info.value.one_line()
    assert isinstance(info.value, GuideError)
    assert "\n" not in message and len(message) < 400
    for word in words:
        assert word in message, (case, message)


@pytest.mark.parametrize("case", sorted(CONVERTED))
def test_awkward_files_become_8bit_rgb(tmp_path, case):
    writer, rgb, note = CONVERTED[case]
    loaded = load_image(writer(tmp_path), min_side=1)
    assert loaded.image.mode == "RGB" and loaded.image.size == (40, 40)
    got = loaded.image.getpixel((20, 20))
    assert np.abs(np.subtract(got, rgb)).max() <= 2, (case, got, rgb)
    if note:
        assert any(note in n for n in loaded.notes), (case, loaded.notes)


def test_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (200, 100), (1, 2, 3)).save(path)
    assert load_image(path).size == (200, 100)
    with pytest.raises(ImageLoadError, match="above the limit of 0.01 MP"):
        load_image(path, max_pixels=10_000)
    assert load_image(path, max_pixels=None).size == (200, 100)
    assert DEFAULT_MAX_PIXELS == 64_000_000


def test_exif_orientation_is_honoured(tmp_path):
    upright = np.zeros((60, 40, 3), np.uint8)  # 40 wide, 60 tall
    upright[:10, :10] = (255, 0, 0)  # red block top-left
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_270)  # as a sideways camera writes it
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CW to view" -> Pillow's exif_transpose rotates it back
    path = tmp_path / "sideways.png"
    stored.save(path, exif=exif.tobytes())
    loaded = load_image(path)
    assert loaded.size == (40, 60)
    np.testing.assert_array_equal(np.asarray(loaded.image), upright)
    assert any("EXIF orientation 8" in n for n in loaded.notes)


def test_multi_frame_tiff_uses_first_page(tmp_path):
    path = tmp_path / "pages.tif"
    pages = [Image.new("RGB", (40, 40), c) for c in ((0, 0, 200), (200, 0, 0))]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    loaded = load_image(path)
    assert loaded.image.getpixel((5, 5)) == (0, 0, 200)
    assert loaded.frames == 2 and "used the first frame of 2" in loaded.notes


def test_in_memory_images(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    for source in (arr, torch.from_numpy(arr), Image.fromarray(arr)):
        loaded = load_image(source)
        np.testing.assert_array_equal(np.asarray(loaded.image), arr)
    gray = load_image(Image.fromarray(arr[:, :, 0]))
    assert gray.image.mode == "RGB" and "converted grayscale to RGB" in gray.notes
    with pytest.raises(ImageLoadError, match="too small"):
        load_image(arr[:10])


def test_to_rgb_uint8_shapes_and_alpha():
    gray = np.full((4, 5), 9, np.uint8)
    assert to_rgb_uint8(gray).shape == (4, 5, 3)
    assert to_rgb_uint8(gray[:, :, None]).shape == (4, 5, 3)
    rgba = np.zeros((4, 5, 4), np.uint8)  # fully transparent black -> white background
    assert (to_rgb_uint8(rgba) == 255).all()
    with pytest.raises(ValueError, match="uint8"):
        to_rgb_uint8(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_rgb_uint8(np.zeros((4, 5, 2), np.uint8))
    assert to_rgb_uint8(Image.fromarray(np.full((3, 3), 40000, np.uint16))).max() == 156  # 16-bit scaled, not clipped


def test_uint8_tensor_round_trip_matches_guide():
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16)[:, :, None].repeat(3, axis=2)
    x = uint8_to_tensor(arr)
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() == -1 and x.max() == 1
    ref = torch.from_numpy(arr.transpose(2, 0, 1).copy()).to(torch.float32) / 127.5 - 1  # GUIDE's image_to_tensor
    torch.testing.assert_close(x[0], ref, rtol=0, atol=0)
    back = tensor_to_uint8(x)
    # GUIDE's tensor_to_image: (t * 127.5 + 128) truncated = x + 0.5 truncated: the round trip is exact
    np.testing.assert_array_equal(back[0], arr)
    batch = uint8_to_tensor([Image.fromarray(arr), arr])
    assert batch.shape == (2, 3, 16, 16)
    assert tensor_to_pil(batch)[1].size == (16, 16)
    with pytest.raises(ValueError):
        tensor_to_uint8(torch.zeros(2, 4, 8, 8))
