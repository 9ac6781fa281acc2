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
