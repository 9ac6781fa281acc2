"""Mode joint: K identities in ONE model; per-step identity sampling."""
import json

import torch

from guide.batch.runner import run_batch
from guide.batch.sampling import SampledLTUTrainer, make_trainer
from guide.batch.schema import load_job
from guide.config import method_preset
from guide.io import load_generator

from .conftest import write_job


def test_joint_writes_one_generator_and_renders_for_each_identity(tmp_path, tiny_resources, stub_evaluator,
                                                                  monkeypatch):
    import guide.batch.joint

    trainers = []
    real_make_trainer = guide.batch.joint.make_trainer
    monkeypatch.setattr(guide.batch.joint, "make_trainer",
                        lambda *a, **k: trainers.append(real_make_trainer(*a, **k)) or trainers[-1])
    job = load_job(write_job(tmp_path / "job.yaml", mode="joint", iters=2, identity_chunk=2,
                             identities=[{"id": "a", "random": 1}, {"id": "b", "random": 2}, {"id": "c", "random": 3}],
                             retain=[{"random": 50}]))
    out = tmp_path / "out"
    summary = run_batch(job, out, resources=tiny_resources(), evaluator=stub_evaluator, progress=False,
                        log=lambda m: None)
    assert summary.exit_code == 0 and summary.counts["done"] == 3
    # one exact trainer over all 3 identities, 2 per forward pass (its chunks equal one pass: test_trainer)
    (trainer,) = trainers
    assert type(trainer).__name__ == "LTUTrainer" and trainer.w_u.shape[0] == 3
    assert [list(r) for r in trainer.chunks()] == [[0, 1], [2]]
    G = load_generator(out / "model")
    assert G is not None and (out / "model" / "losses.png").is_file()
    assert list(out.glob("*/generator.json")) == [out / "model" / "generator.json"]  # one generator
    provenance = json.loads((out / "model" / "generator.json").read_text())["provenance"]
    assert provenance["batch"]["identities"] == ["a", "b", "c"] and provenance["batch"]["complete"]
    assert len((out / "model" / "losses.jsonl").read_text().splitlines()) == 2
    latents = torch.load(out / "model" / "latents.pt", weights_only=True)
    assert latents["w_u"].shape == (3, 14, 512) and latents["ids"] == ["a", "b", "c"]
    for ident in ("a", "b", "c"):
        for name in ("renders/before_00.png", "renders/after_00.png", "renders/target_00.png", "grid.png",
                     "latents.pt", "config.json"):
            assert (out / ident / name).is_file(), (ident, name)
        metrics = json.loads((out / ident / "metrics.json").read_text())
        assert metrics["joint_identities"] == 3 and metrics["ID"] == 0.25 and metrics["ID_others"] == 0.9
        assert metrics["pixel_l1_before_target"] > 0
    # identity metrics once per identity (with the retain pair), model metrics once
    assert len(stub_evaluator.identity_calls) == 3 and all(n == 1 for _, n in stub_evaluator.identity_calls)
    assert stub_evaluator.model_calls == 1
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["FID_pre"] == 1.5 and "retain_pixel_l1" in report["model"]

    # resuming a finished joint batch trains nothing and changes nothing
    stamp = (out / "model" / "generator.safetensors").stat().st_mtime_ns
    again = run_batch(job, out, resume=True, resources=tiny_resources(), evaluator=None, progress=False,
                      log=lambda m: None)
    assert again.exit_code == 0 and (out / "model" / "generator.safetensors").stat().st_mtime_ns == stamp


def test_sampled_trainer_uses_a_subset_per_step(tiny_generator_factory, random_lpips):
    G = tiny_generator_factory()
    config = method_preset("guide").ltu
    config.losses.adj_batch, config.losses.global_batch, config.identity_chunk = 1, 1, 2
    w_u = torch.randn(5, 14, 512) * 0.1
    trainer = make_trainer(G, w_u, w_u + 1.0, config, type("N", (), {"lpips": random_lpips, "id_loss": None})(),
                           seed=0, sample=2)
    assert isinstance(trainer, SampledLTUTrainer)
    assert trainer.config.losses.global_weight == config.losses.global_weight * 2 / 5
    state = trainer.subset_rng.get_state()
    first = trainer.draw_subset()
    assert len(first) == 2 and len(set(first.tolist())) == 2
    trainer.subset_rng.set_state(state)
    values = trainer.step()
    assert torch.equal(trainer.last_subset, first) and trainer.w_u.shape[0] == 5
    assert values["loss"] > 0 and "global" in values
    saved = trainer.state_dict()
    nxt = trainer.draw_subset()
    trainer.load_state_dict(saved)
    assert torch.equal(trainer.draw_subset(), nxt)
    exact = make_trainer(G, w_u, w_u + 1.0, config, type("N", (), {"lpips": random_lpips, "id_loss": None})(),
                         seed=0, sample=None)
    assert type(exact).__name__ == "LTUTrainer"


def test_photo_without_a_face_fails_alone(tmp_path, tiny_resources, monkeypatch):
    """Photos go through the real aligner (MTCNN ships with facenet-pytorch); a blank photo (no
    face) and a file that is not an image are recorded with their reasons, the rest is erased."""
    from PIL import Image

    import guide.inversion

    real_invert = guide.inversion.invert_photo

    def invert(photo, **kwargs):  # no GOAE checkpoint here; these photos never reach the encoder
        return real_invert(photo, **{**kwargs, "encoder": object()})

    monkeypatch.setattr(guide.inversion, "invert_photo", invert)
    Image.new("RGB", (256, 256), (128, 128, 128)).save(tmp_path / "blank.png")
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    job = load_job(write_job(tmp_path / "job.yaml", mode="joint", w_avg="mapping", identities=[
        {"id": "blank", "photo": "blank.png"}, {"id": "junk", "photo": "junk.jpg"}, {"id": "ok", "random": 1}]))
    out = tmp_path / "out"
    summary = run_batch(job, out, resources=tiny_resources(), evaluator=None, progress=False, log=lambda m: None)
    assert summary.exit_code == 1 and summary.counts == {"pending": 0, "queued": 0, "running": 0,
                                                         "done": 1, "failed": 2}
    assert "1 of 3 identities erased, 2 failed" in summary.line()
    status = json.loads((out / "status.json").read_text())["identities"]
    assert "no face found" in status["blank"]["reason"]
    assert status["junk"]["state"] == "failed" and "junk.jpg" in status["junk"]["reason"]
    assert "\n" not in status["junk"]["reason"]
    assert json.loads((out / "model" / "config.json").read_text())["identities"] == ["ok"]
    assert not (out / "blank").exists() and (out / "ok" / "metrics.json").is_file()
    report = (out / "report.md").read_text()
    assert "| blank | failed |" in report and "no face found" in report
