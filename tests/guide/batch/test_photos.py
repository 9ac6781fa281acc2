"""Photo identities in a batch: the GOAE encoder and the face detector load once, on the first
photo (counting stand-ins replace the real networks), and only for photos."""
import json

import torch

from guide.batch.runner import run_batch
from guide.batch.schema import load_job

from .conftest import write_job


def _photos(tmp_path, *names):
    paths = []
    for name in names:
        path = tmp_path / f"{name}.png"
        path.write_bytes(b"not read by the stand-ins")
        paths.append(str(path))
    return paths


def _w_avg(checkpoints):
    """Photo erasures need the mean latent file (w_avg: file, the default)."""
    torch.save(torch.zeros(14, 512), checkpoints / "w_avg_ffhqrebalanced512-128.pt")


def _run(tmp_path, resources, checkpoints, identities, retain=(), log=lambda m: None):
    job = load_job(write_job(tmp_path / "job.yaml", identities=list(identities), retain=list(retain)))
    resources.checkpoint_dir = checkpoints
    return run_batch(job, tmp_path / "out", resources=resources, evaluator=None, progress=False, log=log)


def test_photos_of_a_batch_share_one_encoder_and_detector(tmp_path, tiny_resources, photo_loads):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "encoder_FFHQ.pt").write_bytes(b"stand-in")
    _w_avg(checkpoints)
    a, b, c = _photos(tmp_path, "a", "b", "c")
    summary = _run(tmp_path, tiny_resources(), checkpoints, [{"photo": a}, {"photo": b}], retain=[{"photo": c}])
    assert summary.exit_code == 0, summary.counts
    assert (photo_loads.encoders, photo_loads.detectors) == (1, 1)  # not once per photo (3)


def test_missing_encoder_fails_only_the_photos(tmp_path, tiny_resources, photo_loads):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    _w_avg(checkpoints)
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
