"""The batch folder: inputs before the folder, --overwrite removes only a batch's own files,
a damaged status.json on --resume is one line."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from guide.batch.runner import BatchFolderError, run_batch
from guide.batch.schema import load_job
from guide.cli import cli
from guide.errors import GuideError

from .conftest import write_job

QUIET = dict(evaluator=None, progress=False, log=lambda m: None)


def _earlier_batch(out: Path) -> None:
    """An earlier batch with identities `old-1` and `random-1`, plus a user's notes."""
    files = {"job.json": "{}", "report.md": "old", "old-1/config.json": "{}", "old-1/renders/after_00.png": "old",
             "random-1/config.json": "{}", "model/generator.json": "old", "notes.txt": "mine",
             "old-1/notes.txt": "mine too"}
    status = {"mode": "independent", "order": ["old-1", "random-1"],
              "identities": {i: {"state": "done", "identity": {"kind": "random", "value": 1, "name": None}}
                             for i in ("old-1", "random-1")}}
    files["status.json"] = json.dumps(status)
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)


def _snapshot(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _fake_run_erase(identity, out_dir, G_src, config, networks, **kw):
    """Writes what an erase writes (renders, settings, generator) without training."""
    from guide.erase import EraseResult
    from guide.io import save_generator

    out = Path(out_dir)
    (out / "renders").mkdir(parents=True, exist_ok=True)
    (out / "renders" / "after_00.png").write_text("new")
    (out / "config.json").write_text("{}")
    save_generator(G_src, out / "generator")
    import torch

    torch.save({"w_u": torch.zeros(1, 14, 512), "w_t": torch.zeros(1, 14, 512)}, out / "latents.pt")
    return EraseResult(out, 1, {}, {"steps": 1})


def test_overwrite_keeps_the_earlier_batch_when_the_generator_fails(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04garbage")
    job = load_job(write_job(tmp_path / "job.yaml", generator=str(bad), networks="random",
                             identities=[{"random": 1}]))
    out = tmp_path / "out"
    _earlier_batch(out)
    before = _snapshot(out)
    with pytest.raises(GuideError, match="bad.pkl"):
        run_batch(job, out, overwrite=True, **QUIET)
    assert _snapshot(out) == before


def test_overwrite_removes_only_the_batch_files(tmp_path, tiny_resources, monkeypatch):
    monkeypatch.setattr("guide.erase.run_erase", _fake_run_erase)
    job = load_job(write_job(tmp_path / "job.yaml", identities=[{"random": 1}]))
    out = tmp_path / "out"
    _earlier_batch(out)
    summary = run_batch(job, out, overwrite=True, resources=tiny_resources(), **QUIET)
    assert summary.exit_code == 0
    files = _snapshot(out)
    assert files["notes.txt"] == b"mine" and files["old-1/notes.txt"] == b"mine too"
    assert not any(name.startswith("old-1/") and "notes" not in name for name in files)  # the old identity's files
    assert "model/generator.json" not in files and files["random-1/renders/after_00.png"] == b"new"
    assert json.loads(files["status.json"])["order"] == ["random-1"]


def test_the_job_file_inside_the_folder_is_not_overwritten(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    job = out / "job.json"
    job.write_text(json.dumps({"generator": "builtin:tiny", "networks": "random", "identities": [{"random": 1}],
                               "iters": 1, "losses": {"adj_batch": 1, "global_batch": 1}, "evaluation": {"views": 1}}))
    before = _snapshot(out)
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(out), "--overwrite", "--quiet"])
    assert result.exit_code == 2 and "is an input of this run" in result.output, result.output
    assert "Traceback" not in result.output and _snapshot(out) == before


@pytest.mark.parametrize("status", ["{not json", '{"identities": [1, 2]}', "[" * 100000 + "]" * 100000,
                                    '{"identities": {"a": {"state": "sleeping"}}}'],
                         ids=["garbage", "wrong shape", "deep", "unknown state"])
def test_resume_with_a_damaged_status_file_is_one_line(tmp_path, status):
    job = write_job(tmp_path / "job.yaml", generator="builtin:tiny", networks="random", identities=[{"random": 1}])
    out = tmp_path / "out"
    out.mkdir()
    (out / "status.json").write_text(status)
    before = _snapshot(out)
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(out), "--resume", "--quiet"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.output and len(errors) == 1 and "status.json" in errors[0], result.output
    assert _snapshot(out) == before


def test_resume_refuses_a_folder_that_is_not_a_batch(tmp_path):
    job = load_job(write_job(tmp_path / "job.yaml", generator="builtin:tiny", networks="random",
                             identities=[{"random": 1}]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BatchFolderError, match="holds no resumable run"):
        run_batch(job, out, resume=True, **QUIET)
    assert _snapshot(out) == {"notes.txt": b"mine"}
