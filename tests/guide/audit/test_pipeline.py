"""run_audit on an erasure made from a photo: every file, the report's Audit section, and a record
whose counts match the workload estimate `guide bench` uses."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from guide.audit.pipeline import audit_workload, run_audit
from guide.config import AttackConfig, AuditConfig, CameraConfig, LeakageConfig
from guide.evaluate.identity import Others
from guide.render import camera_for, to_uint8
from tests.guide.audit.conftest import NUM_VIEWS, altered
from tests.guide.evaluate.conftest import build_erase_output


class StubPhotoModels:
    """Stands in for guide.inversion.PhotoModels (no MTCNN, no GOAE)."""

    def detector(self, device):
        return "detector"

    def encoder(self, checkpoint_dir, device):
        return "encoder"


@pytest.fixture
def photo_erasure(tmp_path, audit_source, erased_latent, monkeypatch):
    """An erase folder whose config names a photo (the source's render of w_u); alignment returns
    the photo as it is, at yaw 0.1 / pitch -0.1, and 'GOAE' inverts it to w_u exactly."""
    folder = build_erase_output(tmp_path / "run", audit_source, altered(audit_source), NUM_VIEWS)
    with torch.no_grad():
        image = audit_source.synthesis(erased_latent, camera_for(CameraConfig(), 0.1, -0.1), noise_mode="const",
                                       deterministic=True)["image"]
    photo = tmp_path / "person.png"
    Image.fromarray(to_uint8(image)[0]).save(photo)
    config = json.loads((folder / "config.json").read_text())
    config["identity"] = {"kind": "photo", "value": str(photo)}
    (folder / "config.json").write_text(json.dumps(config))

    def align_photo(path, face_index=None, *, detector=None, device="cpu"):
        assert detector == "detector"
        with Image.open(path) as img:
            return SimpleNamespace(image=img.convert("RGB"), pose=SimpleNamespace(yaw=0.1, pitch=-0.1), notes=[])

    monkeypatch.setattr("guide.preprocess.align_photo", align_photo)
    monkeypatch.setattr("guide.inversion.invert", lambda crop, encoder, w_avg, device="cpu": erased_latent.clone())
    return folder, photo


@pytest.mark.slow
def test_audit_of_a_photo_erasure_writes_every_file(photo_erasure, audit_networks):
    folder, photo = photo_erasure
    config = AuditConfig(views=NUM_VIEWS, impostors=3, attack=AttackConfig(steps=2, lr=0.01, starts=("average",)),
                         leakage=LeakageConfig(radii=(0.0, 5.0), directions=1))
    record = run_audit(folder, audit_networks, config, others=Others("random", count=1), photo_models=StubPhotoModels(),
                       progress=False, log=lambda m: None)
    for name in ("audit.json", "audit.png", "audit_attack.png", "report.html"):
        assert (folder / name).is_file(), name
    saved = json.loads((folder / "audit.json").read_text())
    assert saved["verdicts"] == record["verdicts"] and set(saved["verdicts"]) == {"reinversion", "attack", "leakage",
                                                                                   "retained"}
    assert saved["photo"]["source"] == str(photo) and len(saved["photo"]["sha256"]) == 64
    assert saved["reinversion"]["w_distance_to_erased_latent"] == 0.0
    assert saved["generators"]["source"]["sha256"] and saved["generators"]["unlearned"]["sha256"]
    assert saved["threshold"]["source"] == "calibrated" and saved["threshold"]["pairs"] == 3
    assert saved["leakage"]["retained"]["count"] == 1 and saved["settings"]["attack"]["steps"] == 2
    # the estimate of `guide bench` counts exactly the images this audit scored
    assert audit_workload(config, retained=1, photo=True)["scored_images"] == saved["scoring"]["images"]
    page = (folder / "report.html").read_text()
    assert "<h2>Audit</h2>" in page and page.count("data:image/png;base64") >= 4  # grid, losses, leakage, attack
    for line in saved["verdicts"].values():
        assert line.replace("'", "&#x27;").replace("<", "&lt;") in page
    with Image.open(folder / "audit_attack.png") as picture:  # 4 rows of photo + views, 128 px tiles
        assert picture.size == (128 * (1 + NUM_VIEWS), 128 * 4)
    assert np.isfinite(saved["attack"]["unlearned"]["mean"])
