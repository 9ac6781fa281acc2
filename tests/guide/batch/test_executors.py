"""Executors: Ray tasks (a Ray cluster started on this machine, CPU only) and a process per device."""
import json

import pytest
from click.testing import CliRunner

from guide.cli import cli

from .conftest import write_job


def _two_identities(tmp_path, generator, **options):
    return write_job(tmp_path / "job.yaml", generator=str(generator), networks="random",
                     identities=[{"id": "one", "random": 1}, {"id": "two", "random": 2}], **options)


def test_ray_tasks_erase_each_identity(tmp_path, saved_tiny_generator):
    """Ray >= 2.x has no local_mode any more: `ray.init()` starts a one-machine cluster instead."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'guide-unlearning[ray]')")
    job = _two_identities(tmp_path, saved_tiny_generator, executor="ray",
                          ray={"num_gpus": 0, "num_cpus": 1})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    status = json.loads((out / "status.json").read_text())
    assert status["counts"]["done"] == 2
    assert all(e["device"] == "cpu" for e in status["identities"].values())
    assert (out / "one" / "generator.json").is_file() and (out / "two" / "renders" / "after_00.png").is_file()


def test_joint_batch_runs_as_one_ray_task(tmp_path, saved_tiny_generator):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'guide-unlearning[ray]')")
    job = _two_identities(tmp_path, saved_tiny_generator, mode="joint", executor="ray",
                          ray={"num_gpus": 0, "num_cpus": 1})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "one Ray task" in result.output
    assert json.loads((out / "status.json").read_text())["counts"]["done"] == 2
    assert (out / "model" / "generator.json").is_file() and (out / "two" / "grid.png").is_file()


def test_ray_missing_is_a_one_line_error(tmp_path, saved_tiny_generator, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    job = _two_identities(tmp_path, saved_tiny_generator, executor="ray")
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "guide-unlearning[ray]" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_one_process_per_device(tmp_path, saved_tiny_generator):
    job = _two_identities(tmp_path, saved_tiny_generator, devices=["cpu", "cpu"])
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 worker processes" in result.output
    assert json.loads((out / "status.json").read_text())["counts"]["done"] == 2
