"""`guide preprocess`: the crop and its JSON sidecar, and one-line errors without half-written files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from guide.cli import cli

from .badimages import REFUSED


@pytest.fixture
def runner():
    return CliRunner()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".png", ".json", ".jpg") or ".tmp-" in p.name)


def test_preprocess_writes_crop_and_sidecar(runner, faces_dir, tmp_path):
    out = tmp_path / "crop.png"
    result = runner.invoke(cli, ["preprocess", str(faces_dir / "wild_2.jpg"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "found 1 face in" in result.output and "used face 0 (probability" in result.output
    crop = Image.open(out)
    assert crop.size == (512, 512) and crop.mode == "RGB"
    sidecar = json.loads((tmp_path / "crop.json").read_text())
    assert sidecar["num_faces"] == 1 and sidecar["face_index"] == 0 and sidecar["probability"] > 0.99
    assert np.asarray(sidecar["landmarks"]).shape == (5, 2) and np.asarray(sidecar["matrix"]).shape == (2, 3)
    assert len(sidecar["camera"]) == 25 and sidecar["notes"] == []
    assert {"yaw_deg", "elevation_deg", "eg3d_yaw", "eg3d_pitch"} <= set(sidecar["pose"])
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_preprocess_reports_notes_and_face_choice(runner, faces_dir, tmp_path):
    photo = tmp_path / "two.gif"  # palette, two frames, two faces
    canvas = Image.new("RGB", (700, 400), (90, 110, 130))
    canvas.paste(Image.open(faces_dir / "aligned_1.jpg").resize((300, 300)), (20, 50))
    canvas.paste(Image.open(faces_dir / "aligned_3.jpg").resize((200, 200)), (450, 100))
    canvas.save(photo, save_all=True, append_images=[Image.new("RGB", (700, 400))])
    out = tmp_path / "second.jpg"
    result = runner.invoke(cli, ["preprocess", str(photo), "-o", str(out), "--face-index", "1"])
    assert result.exit_code == 0, result.output
    assert "found 2 faces" in result.output and "used face 1" in result.output
    assert "note: used the first frame of 2" in result.output
    assert Image.open(out).format == "JPEG" and (tmp_path / "second.json").exists()


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_photo_is_one_line_error_and_writes_nothing(runner, tmp_path, case):
    photo = REFUSED[case][0](tmp_path)
    outdir = tmp_path / "out"
    outdir.mkdir()
    result = runner.invoke(cli, ["preprocess", str(photo), "-o", str(outdir / "crop.png")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output and _leftovers(outdir) == []


def test_no_face_and_bad_output(runner, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (128, 128, 128)).save(blank)
    result = runner.invoke(cli, ["preprocess", str(blank), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and result.output.strip() == f"error: no face found in {blank}"
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.json").exists()
    for target, words in ((tmp_path / "x.gif", "must end in"), (tmp_path / "missing" / "x.png", "does not exist")):
        result = runner.invoke(cli, ["preprocess", str(blank), "-o", str(target)])
        assert result.exit_code == 2 and words in result.output and len(result.output.strip().splitlines()) == 1


def test_pixel_limit_option(runner, tmp_path):
    photo = tmp_path / "p.png"
    Image.new("RGB", (300, 200)).save(photo)
    result = runner.invoke(cli, ["preprocess", str(photo), "-o", str(tmp_path / "c.png"), "--max-pixels", "1000"])
    assert result.exit_code == 2 and "above the limit" in result.output


def test_output_over_the_input_or_onto_a_folder_is_refused_before_any_work(runner, faces_dir, tmp_path):
    import shutil

    photo = tmp_path / "face.jpg"  # a real face: without the checks both commands would succeed in writing
    shutil.copy(faces_dir / "aligned_1.jpg", photo)
    original = photo.read_bytes()
    result = runner.invoke(cli, ["preprocess", str(photo), "-o", str(photo)])
    assert result.exit_code == 2 and "would overwrite the input" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and photo.read_bytes() == original
    (tmp_path / "crop.json").mkdir()  # the sidecar's path is a folder: refused before any work, no orphan crop
    result = runner.invoke(cli, ["preprocess", str(photo), "-o", str(tmp_path / "crop.png")])
    assert result.exit_code == 2 and "crop.json is a directory" in result.output, result.output
    assert not (tmp_path / "crop.png").exists()
