"""Photo identities in a batch: the GOAE encoder and the face detector load once, on the first
photo (counting stand-ins replace the real networks), and only for photos."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import guide.checkpoints
from guide.batch.runner import run_batch
from guide.batch.schema import load_job

from .conftest import write_job


@pytest.fixture
def photo_loads(monkeypatch):
    """Counts encoder and detector loads; alignment and encoding are stand-ins that need neither a
    face nor real weights (a photo's latent is the mean latent, nudged)."""
    loads = SimpleNamespace(encoders=0, detectors=0)
    real_require = guide.checkpoints.require_checkpoint

    def require_checkpoint(name, folder):  # a dummy file passes; a missing one keeps the real error
        path = Path(folder) / name
        return path if path.is_file() else real_require(name, folder)

    def load_encoder(path, device="cpu"):
        loads.encoders += 1
        return "encoder"

    class FaceDetector:
        def __init__(self, device="cpu"):
            loads.detectors += 1

    def align_photo(photo, face_index=None, *, detector=None, device="cpu"):
        assert isinstance(detector, FaceDetector)
        return SimpleNamespace(image=photo)

    def invert(crop, encoder, w_avg, device="cpu"):
        assert encoder == "encoder"
        return w_avg + 0.01

    monkeypatch.setattr(guide.checkpoints, "require_checkpoint", require_checkpoint)
    monkeypatch.setattr("guide.inversion.load_encoder", load_encoder)
    monkeypatch.setattr("guide.identity.detect.FaceDetector", FaceDetector)
    monkeypatch.setattr("guide.preprocess.align_photo", align_photo)
    monkeypatch.setattr("guide.inversion.invert", invert)
    return loads


def _photos(tmp_path, *names):
    paths = []
    for name in names:
        path = tmp_path / f"{name}.png"
        path.write_bytes(b"not read by the stand-ins")
        paths.append(str(path))
    return paths


def _run(tmp_path, resources, checkpoints, identities, retain=(), log=lambda m: None):
    job = load_job(write_job(tmp_path / "job.yaml", identities=list(identities), retain=list(retain)))
    resources.checkpoint_dir = checkpoints
    return run_batch(job, tmp_path / "out", resources=resources, evaluator=None, progress=False, log=log)


def test_photos_of_a_batch_share_one_encoder_and_detector(tmp_path, tiny_resources, photo_loads):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "encoder_FFHQ.pt").write_bytes(b"stand-in")
    a, b, c = _photos(tmp_path, "a", "b", "c")
    summary = _run(tmp_path, tiny_resources(), checkpoints, [{"photo": a}, {"photo": b}], retain=[{"photo": c}])
    assert summary.exit_code == 0, summary.counts
    assert (photo_loads.encoders, photo_loads.detectors) == (1, 1)  # not once per photo (3)


def test_missing_encoder_fails_only_the_photos(tmp_path, tiny_resources, photo_loads):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    a, b = _photos(tmp_path, "a", "b")
    summary = _run(tmp_path, tiny_resources(), checkpoints, [{"photo": a}, {"random": 1}, {"photo": b}])
    status = json.loads((tmp_path / "out" / "status.json").read_text())["identities"]
    assert summary.counts["done"] == 1 and status["random-1"]["state"] == "done"
    reasons = {status[i]["reason"] for i in ("a", "b")}
    assert len(reasons) == 1 and next(iter(reasons)).startswith("checkpoint encoder_FFHQ.pt is missing from")
    assert "\n" not in next(iter(reasons))


def test_batch_without_photos_loads_no_photo_model_and_logs_no_erase_metrics_note(tmp_path, tiny_resources,
                                                                                  photo_loads):
    """Random identities need neither network; run_erase's own "pixel metrics only (...)" line is
    not printed next to the batch's evaluation (`guide erase` still prints it)."""
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "encoder_FFHQ.pt").write_bytes(b"stand-in")
    messages = []
    summary = _run(tmp_path, tiny_resources(), checkpoints, [{"random": 1}], retain=[{"random": 2}],
                   log=messages.append)
    assert summary.exit_code == 0
    assert (photo_loads.encoders, photo_loads.detectors) == (0, 0)
    assert any("random-1: done" in m for m in messages), messages
    assert not any("pixel metrics only" in m for m in messages), messages
