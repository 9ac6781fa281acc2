"""Which photo an audit attacks with (guide.audit.photo.photo_of)."""
import pytest

from guide.audit.photo import photo_of
from guide.errors import GuideError


def test_photo_of_each_kind_of_erasure(tmp_path):
    for name in ("b.jpg", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    folder = {"identity": {"kind": "folder", "value": str(tmp_path), "index": 1}}
    assert photo_of(folder, None) == tmp_path / "b.jpg"  # sorted by name, images only, as the erasure chose
    assert photo_of({"identity": {"kind": "photo", "value": str(tmp_path / "a.png")}}, None) == tmp_path / "a.png"
    assert photo_of({"identity": {"kind": "random", "value": 3}}, None) is None
    assert photo_of({"identity": {"kind": "random", "value": 3}}, tmp_path / "a.png") == tmp_path / "a.png"
    with pytest.raises(GuideError, match="photo 2 of folder .* is gone"):
        photo_of({"identity": {"kind": "folder", "value": str(tmp_path), "index": 2}}, None)
    with pytest.raises(GuideError, match="is gone"):
        photo_of({"identity": {"kind": "photo", "value": str(tmp_path / "missing.jpg")}}, None)


class _Models:
    """PhotoModels stand-in: a detector that reports ``landmarks`` (or nothing) and an encoder that
    records what it is fed and returns zero offsets."""

    def __init__(self, landmarks):
        import numpy as np
        import torch

        self.landmarks, self.fed = landmarks, []
        models = self

        class Encoder(torch.nn.Module):
            def forward(self, x):
                models.fed.append(x.clone())
                return torch.zeros(x.shape[0], 14, 512), None

        self._encoder = Encoder()
        self._np = np

    def detector(self, device):
        from guide.identity.detect import Face

        def detect(image):
            if self.landmarks is None:
                return []
            return [Face(box=self._np.array([0.0, 0.0, 512.0, 512.0]), probability=0.99, landmarks=self.landmarks)]
        return detect

    def encoder(self, checkpoint_dir, device):
        return self._encoder


def test_an_aligned_erasure_photo_is_not_re_aligned(tmp_path):
    """An erasure made with --aligned is audited with its own crop as GOAE saw it (not detected,
    warped and re-cropped again), its camera fitted to the landmarks found on the crop."""
    import numpy as np
    import torch
    from PIL import Image

    from guide.audit.photo import load_photo
    from guide.config import CameraConfig
    from guide.inversion import encoder_input
    from guide.preprocess.template import DEFAULT_TEMPLATE
    from guide.render import camera_for

    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
    path = tmp_path / "aligned.png"
    Image.fromarray(crop).save(path)
    w_avg = torch.randn(1, 14, 512)
    # landmarks where the template puts them, shifted 30 px to the right: a re-alignment would move the crop
    shifted = DEFAULT_TEMPLATE.landmarks + np.array([30.0, 0.0])
    models = _Models(shifted)
    photo = load_photo(path, CameraConfig(), w_avg, None, "cpu", models, aligned=True)
    assert np.array_equal(photo.image, crop)  # the crop itself, pixel for pixel
    assert torch.equal(models.fed[0], encoder_input(Image.fromarray(crop)))  # and exactly what the erasure fed GOAE
    assert torch.equal(photo.w_inverted, w_avg) and any("not re-aligned" in n for n in photo.notes)
    # the camera comes from the landmarks found on the crop, read at the template's size: the same
    # face in a 256² crop (landmarks halved) gets the same camera
    small = tmp_path / "aligned256.png"
    Image.fromarray(crop).resize((256, 256)).save(small)
    half = load_photo(small, CameraConfig(), w_avg, None, "cpu", _Models(shifted / 2), aligned=True)
    assert torch.allclose(half.camera, photo.camera, atol=1e-4)
    assert not torch.allclose(photo.camera, camera_for(CameraConfig(), 0.0, 0.0), atol=1e-3)
    none = load_photo(path, CameraConfig(), w_avg, None, "cpu", _Models(None), aligned=True)
    assert torch.equal(none.camera, camera_for(CameraConfig(), 0.0, 0.0))
    assert any("frontal camera assumed" in n for n in none.notes)
    # without aligned, the same photo is detected and warped: the crop differs from the file
    moved = load_photo(path, CameraConfig(), w_avg, None, "cpu", _Models(shifted), aligned=False)
    assert not np.array_equal(moved.image, crop)

