"""guide.inversion and `guide invert` with a tiny random GOAE and a random w_avg (no real checkpoint)."""
from __future__ import annotations

import hashlib
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import guide
from guide import inversion
from guide.cameras import conditioning_params
from guide.cli import cli
from guide.io.errors import CorruptCheckpointError, MissingCheckpointError
from guide.paths import CHECKPOINTS_ENV

from ..goae.conftest import randomize, tiny_config
from .preprocess.badimages import REFUSED


@pytest.fixture(scope="module")
def tiny_encoder():
    import goae

    return randomize(goae.GOAEncoder(tiny_config()), seed=3).eval()


@pytest.fixture
def checkpoints(tmp_path, tiny_encoder, monkeypatch):
    """A checkpoint folder with the tiny encoder's state_dict and a random [14, 16] w_avg; the
    encoder loader is pointed at the tiny configuration."""
    import goae

    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save(tiny_encoder.state_dict(), folder / inversion.ENCODER_FILE)
    torch.save(torch.randn(14, 16, generator=torch.Generator().manual_seed(0)), folder / inversion.W_AVG_FILE)
    monkeypatch.setattr(inversion, "load_encoder",
                        lambda path, device="cpu", stochastic=False:
                        goae.GOAEncoder.from_checkpoint(path, device, config=tiny_config(stochastic)))
    monkeypatch.delenv(CHECKPOINTS_ENV, raising=False)
    return folder


@pytest.fixture(scope="module")
def crop():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))


def test_encoder_input_is_guides_image_to_tensor(crop):
    x = inversion.encoder_input(crop, 256)
    # GUIDE: i.resize((256, 256)) with Pillow's default filter (bicubic for RGB), then / 127.5 - 1
    reference = np.asarray(crop.resize((256, 256))).transpose(2, 0, 1).astype(np.float32) / 127.5 - 1
    assert x.shape == (1, 3, 256, 256) and x.dtype == torch.float32
    torch.testing.assert_close(x[0], torch.from_numpy(reference), rtol=0, atol=0)
    assert not torch.equal(x, inversion.encoder_input(crop.resize((256, 256), Image.Resampling.BILINEAR), 256))


def test_invert_adds_w_avg(crop, tiny_encoder):
    w_avg = torch.randn(1, 14, 16)
    w = inversion.invert(crop, tiny_encoder, w_avg, "cpu")
    offsets, _ = tiny_encoder(inversion.encoder_input(crop, 32))
    assert w.shape == (1, 14, 16)
    torch.testing.assert_close(w, offsets + w_avg)
    aligned = types.SimpleNamespace(image=crop)  # anything with .image, e.g. an AlignedPhoto
    torch.testing.assert_close(inversion.invert(aligned, tiny_encoder, w_avg[0]), w)
    x = inversion.encoder_input(crop, 32)
    torch.testing.assert_close(inversion.invert(x, tiny_encoder, w_avg), w)
    with pytest.raises(ValueError, match="does not fit"):
        inversion.invert(crop, tiny_encoder, torch.randn(1, 14, 8))
    with pytest.raises(ValueError, match="32x32"):
        inversion.invert(torch.zeros(1, 3, 64, 64), tiny_encoder, w_avg)


@pytest.mark.parametrize("shape", [(14, 512), (1, 14, 512), (512,)])
def test_load_w_avg_shapes(tmp_path, shape):
    path = tmp_path / "w.pt"
    torch.save(torch.ones(shape), path)
    assert inversion.load_w_avg(path).shape == (1, 14, 512)


def test_load_w_avg_refuses_bad_files(tmp_path):
    cases = {"three_rows.pt": torch.ones(3, 512), "ints.pt": torch.ones(14, 512, dtype=torch.int64),
             "two.pt": {"a": torch.ones(14, 512), "b": torch.ones(1)}}
    for name, value in cases.items():
        torch.save(value, tmp_path / name)
        with pytest.raises(CorruptCheckpointError):
            inversion.load_w_avg(tmp_path / name)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match="empty"):
        inversion.load_w_avg(tmp_path / "empty.pt")
    with pytest.raises(MissingCheckpointError):
        inversion.load_w_avg(tmp_path / "none.pt")


def test_load_encoder_reports_a_mismatched_file_in_one_line(tmp_path):
    path = tmp_path / "encoder_FFHQ.pt"
    torch.save({"weight": torch.ones(2)}, path)
    with pytest.raises(CorruptCheckpointError) as info:
        inversion.load_encoder(path)
    assert "\n" not in str(info.value) and "missing key" in str(info.value)


def test_invert_photo_one_call(tmp_path, checkpoints, crop, tiny_encoder):
    photo = tmp_path / "aligned.png"
    crop.save(photo)
    w_avg = torch.load(checkpoints / inversion.W_AVG_FILE).unsqueeze(0)
    expected = tiny_encoder(inversion.encoder_input(crop, 32))[0] + w_avg
    w = inversion.invert_photo(photo, checkpoint_dir=checkpoints, aligned=True)
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(inversion.invert_photo(photo, w_avg=w_avg, encoder=tiny_encoder, aligned=True,
                                                      checkpoint_dir=tmp_path / "nothing"), expected)
    with pytest.raises(MissingCheckpointError, match="encoder_FFHQ.pt is missing"):
        inversion.invert_photo(photo, checkpoint_dir=tmp_path / "nothing", aligned=True)


def _invoke(*args):
    return CliRunner().invoke(cli, ["invert", *map(str, args)])


def test_cli_invert_aligned(tmp_path, checkpoints, crop, tiny_encoder):
    photo = tmp_path / "aligned.png"
    crop.save(photo)
    out = tmp_path / "w.pt"
    result = _invoke(photo, "-o", out, "--checkpoints", checkpoints, "--aligned")
    assert result.exit_code == 0, result.output
    record = torch.load(out, weights_only=True)
    w_avg = torch.load(checkpoints / inversion.W_AVG_FILE).unsqueeze(0)
    torch.testing.assert_close(record["w"], tiny_encoder(inversion.encoder_input(crop, 32))[0] + w_avg)
    assert record["w"].shape == (1, 14, 16) and record["camera"].shape == (1, 25)
    torch.testing.assert_close(record["camera"], conditioning_params())
    assert record["source"] == str(photo) and record["guide_version"] == guide.__version__
    assert record["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert record["encoder_sha256"] == hashlib.sha256((checkpoints / inversion.ENCODER_FILE).read_bytes()).hexdigest()
    assert record["aligned"] is True and any("--aligned" in n for n in record["notes"])
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_cli_invert_detects_and_keeps_the_camera(tmp_path, checkpoints, shared_dir):
    photo = shared_dir / "faces" / "wild_1.jpg"
    if not photo.exists():
        pytest.skip("../shared/faces is absent")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # MTCNN crawls when torch threads contend for shared cores
    try:
        result = _invoke(photo, "-o", tmp_path / "w.pt", "--checkpoints", checkpoints)
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    assert "found 1 face" in result.output
    record = torch.load(tmp_path / "w.pt", weights_only=True)
    assert record["aligned"] is False and record["num_faces"] == 1 and record["face_index"] == 0
    from guide.cameras import pose_params

    torch.testing.assert_close(record["camera"], pose_params(record["pose"]["eg3d_yaw"], record["pose"]["eg3d_pitch"]))
    assert np.asarray(record["matrix"]).shape == (2, 3)


@pytest.mark.parametrize("missing", [inversion.ENCODER_FILE, inversion.W_AVG_FILE])
def test_cli_invert_missing_checkpoint(tmp_path, checkpoints, crop, missing):
    (checkpoints / missing).unlink()
    photo = tmp_path / "aligned.png"
    crop.save(photo)
    result = _invoke(photo, "-o", tmp_path / "w.pt", "--checkpoints", checkpoints, "--aligned")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: checkpoint {missing} is missing from {checkpoints}")
    assert not (tmp_path / "w.pt").exists()


@pytest.mark.parametrize("case", ["truncated_jpeg", "not_an_image", "empty", "bomb_80mp"])
def test_cli_invert_bad_photo(tmp_path, checkpoints, case):
    photo = REFUSED[case][0](tmp_path)
    result = _invoke(photo, "-o", tmp_path / "w.pt", "--checkpoints", checkpoints, "--aligned")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: ") and not (tmp_path / "w.pt").exists()


def test_cli_invert_refuses_non_square_aligned_and_leaves_old_output(tmp_path, checkpoints, monkeypatch, crop):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (300, 200)).save(wide)
    out = tmp_path / "w.pt"
    out.write_bytes(b"previous result")
    result = _invoke(wide, "-o", out, "--checkpoints", checkpoints, "--aligned")
    assert result.exit_code == 2 and "square" in result.output and out.read_bytes() == b"previous result"

    def explode(*args, **kwargs):
        raise guide.errors.GuideError("encoder blew up")

    monkeypatch.setattr(inversion, "invert", explode)
    photo = tmp_path / "aligned.png"
    crop.save(photo)
    result = _invoke(photo, "-o", out, "--checkpoints", checkpoints, "--aligned")
    assert result.exit_code == 2 and result.output.strip() == "error: encoder blew up"
    assert out.read_bytes() == b"previous result" and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_invert_photo_with_photo_models_loads_each_network_once(photo_loads, tmp_path):
    """Many photos through one PhotoModels: one encoder load, one detector (counting stand-ins)."""
    (tmp_path / inversion.ENCODER_FILE).write_bytes(b"stand-in")
    w_avg = torch.zeros(1, 14, 512)
    models = inversion.PhotoModels()
    for _ in range(3):
        inversion.invert_photo("photo.png", w_avg=w_avg, checkpoint_dir=tmp_path, models=models)
    assert (photo_loads.encoders, photo_loads.detectors) == (1, 1)


# ------------------------------------------------- the reference's protocol: stochastic, batched, aligned


@pytest.fixture(scope="module")
def stochastic_encoder():
    """The tiny encoder with the reference's DropPath/dropout layers (rates 0.5 in tiny_config)."""
    import goae

    return randomize(goae.GOAEncoder(tiny_config(stochastic=True)), seed=3).eval()


def test_stochastic_inversion_is_one_seeded_draw_and_leaves_the_rng_alone(crop, stochastic_encoder, tiny_encoder):
    w_avg = torch.zeros(1, 14, 16)
    deterministic = inversion.invert(crop, stochastic_encoder, w_avg)
    torch.testing.assert_close(deterministic, inversion.invert(crop, tiny_encoder, w_avg))  # eval mode: same net
    state = torch.get_rng_state()
    a = inversion.invert(crop, stochastic_encoder, w_avg, seed=0)
    b = inversion.invert(crop, stochastic_encoder, w_avg, seed=0)
    c = inversion.invert(crop, stochastic_encoder, w_avg, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - deterministic).abs().max() > 1e-3  # live dropout moved the latent
    assert torch.equal(torch.get_rng_state(), state) and not stochastic_encoder.training
    with pytest.raises(ValueError, match="stochastic"):
        inversion.invert(crop, tiny_encoder, w_avg, seed=0)  # no dropout layers: refuse, not silently deterministic


def test_a_folder_is_inverted_in_one_batch(tmp_path, tiny_encoder):
    rng = np.random.default_rng(1)
    photos = []
    for i in range(3):
        photos.append(tmp_path / f"p{i}.png")
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photos[-1])
    w_avg = torch.randn(1, 14, 16, generator=torch.Generator().manual_seed(0))
    calls = []
    hook = tiny_encoder.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        together = inversion.invert_photos(photos, w_avg=w_avg, encoder=tiny_encoder, aligned=True)
    finally:
        hook.remove()
    assert calls == [3] and together.shape == (3, 14, 16)
    one_by_one = torch.cat([inversion.invert_photo(p, w_avg=w_avg, encoder=tiny_encoder, aligned=True) for p in photos])
    torch.testing.assert_close(together, one_by_one, rtol=1e-5, atol=1e-5)  # batching: float rounding only


def test_512_photos_without_aligned_get_a_note(tmp_path, crop):
    crop.save(tmp_path / "a.png")
    note = inversion.aligned_note(tmp_path / "a.png")
    assert note.startswith("note: ") and "--aligned" in note and "\n" not in note
    crop.resize((300, 300)).save(tmp_path / "small.png")
    assert inversion.aligned_note(tmp_path / "small.png") is None
    folder = tmp_path / "folder"
    folder.mkdir()
    crop.save(folder / "1.png")
    crop.save(folder / "2.jpg")
    assert "every photo in" in inversion.aligned_note(folder)
    crop.resize((300, 300)).save(folder / "3.png")
    assert inversion.aligned_note(folder) is None


@pytest.mark.parametrize("value, match", [
    (torch.ones(1, 14, 3), r"shape \[1, 14, 3\], expected \[14, 512\]"),  # accepted before: wrong w_dim
    (torch.full((14, 512), float("nan")), "NaN or infinity"),
    (torch.ones(1).expand(1 << 24), "storages hold"),  # stride 0: a 4-byte file, repeated 14 times before
])
def test_load_w_avg_refuses_wrong_shapes_non_finite_and_expanded_files(tmp_path, value, match):
    path = tmp_path / "w.pt"
    torch.save(value, path)
    with pytest.raises(CorruptCheckpointError, match=match):
        inversion.load_w_avg(path)


@pytest.mark.parametrize("data", [b"\x80\x02h\x00a.......", b"\x80\x02.]tR......", b"\x80\x02(}]K\x01s...."])
def test_load_encoder_twelve_byte_file_is_one_line(tmp_path, data):
    """12-byte files on which torch.load raises KeyError, IndexError or TypeError (found by fuzzing)."""
    path = tmp_path / "encoder_FFHQ.pt"
    path.write_bytes(data)
    with pytest.raises(CorruptCheckpointError, match="truncated or corrupt") as info:
        inversion.load_encoder(path)
    assert "\n" not in str(info.value)
