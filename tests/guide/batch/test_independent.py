"""Mode independent: one model per identity; a bad identity fails alone; resume skips done ones."""
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from guide.batch.runner import run_batch
from guide.batch.schema import load_job
from guide.cli import cli

from .conftest import write_job


def _status(out):
    return json.loads((out / "status.json").read_text())


def test_bad_identity_fails_alone_and_resume_retries_only_it(tmp_path, saved_tiny_generator, latent_file):
    missing = tmp_path / "missing.pt"
    job = write_job(tmp_path / "job.yaml", generator=str(saved_tiny_generator), networks="random",
                    w_avg="mapping",  # no w_avg file beside the tiny generator: its own mean, explicitly
                    identities=[{"id": "rand", "random": 4}, {"id": "ghost", "latent": str(missing)},
                                {"id": "saved", "latent": str(latent_file)}])
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(cli, ["batch", str(job), "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "batch: 2 of 3 identities erased, 1 failed" in result.output
    status = _status(out)
    assert status["counts"] == {"pending": 0, "queued": 0, "running": 0, "done": 2, "failed": 1}
    assert status["identities"]["ghost"]["state"] == "failed"
    assert "latent file not found" in status["identities"]["ghost"]["reason"]
    assert not (out / "ghost").exists()  # nothing half-made is left of a failed identity
    for ident in ("rand", "saved"):
        assert status["identities"][ident]["state"] == "done"
        for name in ("generator.json", "generator.safetensors", "renders/after_00.png", "metrics.json"):
            assert (out / ident / name).is_file(), (ident, name)
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["done"] == 2 and report["identities"]["ghost"]["state"] == "failed"
    assert report["identities"]["rand"]["metrics"]["pixel_l1_before_target"] > 0
    assert "ghost | failed" in (out / "report.md").read_text()

    again = runner.invoke(cli, ["batch", str(job), "--out", str(out)])
    assert again.exit_code == 2 and "--resume" in again.output and "Traceback" not in again.output

    # the missing file appears; --resume erases only that identity
    shutil.copy(latent_file, missing)
    stamps = {i: (out / i / "generator.safetensors").stat().st_mtime_ns for i in ("rand", "saved")}
    resumed = runner.invoke(cli, ["batch", str(job), "--out", str(out), "--resume", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert "batch: 3 of 3 identities erased, 0 failed" in resumed.output
    assert "[3/3] ghost: done" in resumed.output and "rand:" not in resumed.output
    assert {i: (out / i / "generator.safetensors").stat().st_mtime_ns for i in stamps} == stamps
    assert _status(out)["identities"]["ghost"]["state"] == "done"

    changed = runner.invoke(cli, ["batch", str(job), "--out", str(out), "--resume", "--set", "iters=2"])
    assert changed.exit_code == 2 and "erase differ from the interrupted batch" in changed.output


def test_setup_error_leaves_no_half_made_folder(tmp_path):
    """A missing network checkpoint is found after the folder is made: it must not stay behind."""
    (tmp_path / "empty").mkdir()
    job = write_job(tmp_path / "job.yaml", generator="builtin:tiny", checkpoints=str(tmp_path / "empty"),
                    identities=[{"random": 1}])
    out = tmp_path / "out"
    runner = CliRunner()
    for mode, existing in (("independent", False), ("joint", True)):
        if existing:
            out.mkdir()
        result = runner.invoke(cli, ["batch", str(job), "--out", str(out), "--quiet", "--set", f"mode={mode}"])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines()[-1].startswith("error: checkpoint vgg16-397923af.pth is missing")
        assert "Traceback" not in result.output
        assert (list(out.iterdir()) == []) if existing else not out.exists()


def test_interrupted_batch_resumes_where_it_stopped(tmp_path, tiny_resources, monkeypatch, stub_evaluator):
    """A fake run_erase (no training) interrupted on the second identity; resume redoes only it.
    The report then holds every identity's ID, ID_others (retain set) and its model's FID."""
    import torch

    from guide.erase import EraseResult
    from guide.io import save_generator

    calls = []

    def fake_run_erase(identity, out_dir, G_src, config, networks, *, resume=False, **kw):
        calls.append((identity.value, resume))
        if identity.value == 2 and len(calls) == 2:
            raise KeyboardInterrupt
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_generator(G_src, out / "generator")
        torch.save({"w_u": torch.zeros(1, 14, 512), "w_t": torch.zeros(1, 14, 512)}, out / "latents.pt")
        return EraseResult(out, 1, {}, {"steps": 1})

    monkeypatch.setattr("guide.erase.run_erase", fake_run_erase)
    job = load_job(write_job(tmp_path / "job.yaml", identities=[{"random": 1}, {"random": 2}, {"random": 3}],
                             retain=[{"random": 50}]))
    out = tmp_path / "out"
    resources = tiny_resources()
    with pytest.raises(KeyboardInterrupt):
        run_batch(job, out, resources=resources, evaluator=stub_evaluator, progress=False, log=lambda m: None)
    states = {i: e["state"] for i, e in _status(out)["identities"].items()}
    assert states == {"random-1": "done", "random-2": "running", "random-3": "pending"}

    summary = run_batch(job, out, resume=True, resources=resources, evaluator=stub_evaluator, progress=False,
                        log=lambda m: None)
    assert summary.exit_code == 0 and summary.counts["done"] == 3
    # identity 2 was interrupted before it saved a training state: it starts over (resume=False)
    assert calls == [(1, False), (2, False), (2, False), (3, False)]
    report = json.loads((out / "report.json").read_text())
    for ident in ("random-1", "random-2", "random-3"):
        m = report["identities"][ident]["metrics"]
        assert (m["ID"], m["ID_others"], m["FID_pre"], m["delta_FID_real"]) == (0.25, 0.9, 1.5, 0.1), m
        assert m["retain_pixel_l1_per_identity"].keys() == {"random-50"}
    assert all(n == 1 for _, n in stub_evaluator.identity_calls)  # ID_others over the one retained identity
    header = (out / "report.md").read_text().split("| id | state |")[1].splitlines()[0]
    assert all(f" {c} " in header for c in ("ID", "ID_others", "FID_pre", "delta_FID_real"))


def _fake_erase(calls, fail):
    """A run_erase that records (seed, resume, overwrite) and, for the seeds in `fail`, writes
    what an attempt that fails at that point leaves: settings only (before training) or a
    training checkpoint and a render (after)."""
    import torch

    from guide.erase import EraseResult
    from guide.errors import GuideError
    from guide.io import save_generator

    def run_erase(identity, out_dir, G_src, config, networks, *, resume=False, overwrite=False, **kw):
        calls.append((identity.value, resume, overwrite))
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text("{}")
        when = fail.get(identity.value)
        if when is not None:
            if when == "after training":
                (out / "checkpoint").mkdir(exist_ok=True)
                (out / "checkpoint" / "state.pt").write_bytes(b"state")
                (out / "renders").mkdir(exist_ok=True)
                (out / "renders" / "after_00.png").write_bytes(b"png")
            raise GuideError(f"failed {when}")
        save_generator(G_src, out / "generator")
        torch.save({"w_u": torch.zeros(1, 14, 512), "w_t": torch.zeros(1, 14, 512)}, out / "latents.pt")
        return EraseResult(out, 1, {}, {"steps": 1})

    return run_erase


def test_failed_identity_keeps_only_a_resumable_checkpoint(tmp_path, tiny_resources, monkeypatch):
    """A failure before training leaves no folder (it starts over on --resume); one after training
    began keeps the checkpoint and settings, nothing else, and --resume continues from them."""
    calls = []
    fail = {1: "before training", 2: "after training"}
    monkeypatch.setattr("guide.erase.run_erase", _fake_erase(calls, fail))
    job = load_job(write_job(tmp_path / "job.yaml", identities=[{"random": 1}, {"random": 2}]))
    out = tmp_path / "out"
    quiet = dict(evaluator=None, progress=False, log=lambda m: None)
    assert run_batch(job, out, resources=tiny_resources(), **quiet).counts["failed"] == 2
    assert not (out / "random-1").exists()
    kept = sorted(str(p.relative_to(out / "random-2")) for p in (out / "random-2").rglob("*"))
    assert kept == ["checkpoint", "checkpoint/state.pt", "config.json"]

    (out / "random-2" / "notes.txt").write_text("mine")  # a user's file is not the attempt's to remove
    assert run_batch(job, out, resume=True, resources=tiny_resources(), **quiet).counts["failed"] == 2
    assert (out / "random-2" / "notes.txt").read_text() == "mine"
    fail.clear()
    summary = run_batch(job, out, resume=True, resources=tiny_resources(), **quiet)
    assert summary.exit_code == 0
    assert calls[2:] == [(1, False, True), (2, True, False)] * 2


def test_resume_runs_queued_identities_like_pending_ones(tmp_path, tiny_resources, monkeypatch):
    """Identities still queued for a worker when a batch stopped are run by --resume."""
    calls = []
    monkeypatch.setattr("guide.erase.run_erase", _fake_erase(calls, {}))
    job = load_job(write_job(tmp_path / "job.yaml", identities=[{"random": 1}, {"random": 2}]))
    out = tmp_path / "out"
    quiet = dict(evaluator=None, progress=False, log=lambda m: None)
    run_batch(job, out, resources=tiny_resources(), **quiet)
    status = _status(out)
    status["identities"]["random-2"] = {"state": "queued", "identity": status["identities"]["random-2"]["identity"]}
    (out / "status.json").write_text(json.dumps(status))
    summary = run_batch(job, out, resume=True, resources=tiny_resources(), **quiet)
    assert summary.exit_code == 0 and summary.counts["done"] == 2
    # its folder holds no training state (the stand-in saves none): it starts over there
    assert calls == [(1, False, False), (2, False, False), (2, False, True)]
