"""Executors: Ray tasks (a Ray cluster started on this machine, CPU only) and a process per device."""
import json
import os
import time
from pathlib import Path

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


def test_error_in_the_joint_ray_task_is_one_line(tmp_path):
    """A job error met inside the Ray task (here: no generator file) prints as one line, with no
    Ray traceback, and leaves no half-made batch folder."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'guide-unlearning[ray]')")
    job = _two_identities(tmp_path, tmp_path / "missing.json", mode="joint", executor="ray",
                          ray={"num_gpus": 0, "num_cpus": 1})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last == f"error: generator file not found: {tmp_path / 'missing.json'} (job option generator)"
    assert "Traceback" not in result.output and not out.exists()


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


def _which_worker(task):
    """Stands in for erase_identity in the worker processes: reports its process and device.
    It waits until two workers have started a task, so both workers certainly take part."""
    from guide.batch import executors
    from guide.batch.independent import IdentityOutcome

    folder = Path(task.out_dir).parent
    (folder / f"worker-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while len(list(folder.glob("worker-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return IdentityOutcome(task.entry.id, True, device=executors._WORKER_DEVICE, metrics={"pid": os.getpid()})


def test_process_pool_gives_each_device_one_worker(tmp_path):
    """Without GPUs: device names are only labels to the pool, so two labels show the assignment."""
    from guide.batch.executors import run_processes
    from guide.batch.independent import IdentityTask
    from guide.batch.schema import parse_job

    job = parse_job({"identities": [{"random": s} for s in range(5)], "devices": ["cpu", "mps"]})
    tasks = [IdentityTask(job, e, str(tmp_path / e.id)) for e in job.identities]
    queued, started, results = [], [], []
    run_processes(tasks, job.devices, queued.append, lambda t, d: started.append(t), results.append,
                  work=_which_worker)
    assert len(queued) == 5 and sorted(r.id for r in results) == sorted(e.id for e in job.identities)
    assert all(r.ok for r in results)
    devices_of = {}
    for r in results:
        devices_of.setdefault(r.metrics["pid"], set()).add(r.device)
    assert len(devices_of) == 2 and os.getpid() not in devices_of  # two worker processes
    assert sorted(d for ds in devices_of.values() for d in ds) == ["cpu", "mps"]  # one device each, all used


def test_worker_claims_its_cuda_device(monkeypatch):
    """The pool initializer pins the worker to its GPU (torch.cuda.set_device) and its thread share."""
    import queue

    import torch

    from guide.batch import executors

    pinned = []
    monkeypatch.setattr(torch.cuda, "set_device", pinned.append)
    monkeypatch.setattr(executors, "_WORKER_DEVICE", None)
    threads = torch.get_num_threads()
    claims = queue.Queue()
    claims.put(("cuda:1", 1))
    try:
        executors._claim_device(claims)
        assert executors._WORKER_DEVICE == "cuda:1" and pinned == [torch.device("cuda:1")]
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def _status_probe(task):
    """Stands in for erase_identity in the workers: waits until status.json shows its own identity
    running (the parent marks it when the worker reports the start) and, while the other worker
    is busy too, saves what status.json says about every identity."""
    from guide.batch import executors
    from guide.batch.independent import IdentityOutcome

    folder = Path(task.out_dir).parent
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        entries = json.loads((folder / "status.json").read_text())["identities"]
        states = [e["state"] for e in entries.values()]
        if entries[task.entry.id]["state"] == "running" and (states.count("running") == 2 or "queued" not in states):
            break
        time.sleep(0.05)
    (folder / f"seen-{task.entry.id}.json").write_text(json.dumps(entries))
    # do not finish before the other busy worker has saved its view too (else it may see this one done)
    while time.monotonic() < deadline and len(list(folder.glob("seen-*.json"))) < 2:
        time.sleep(0.05)
    return IdentityOutcome(task.entry.id, True, device=executors._WORKER_DEVICE)


def test_queued_identities_wait_without_a_device_until_a_worker_starts_them(tmp_path, monkeypatch):
    """Two workers, three identities: the third is queued (no device) while the two run."""
    from guide.batch import executors

    monkeypatch.setattr(executors, "_erase_on_worker_device", _status_probe)
    job = write_job(tmp_path / "job.yaml", generator="builtin:tiny", networks="random", devices=["cpu", "cpu"],
                    identities=[{"random": s} for s in (1, 2, 3)])
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    seen = [json.loads(p.read_text()) for p in sorted(out.glob("seen-*.json"))]
    assert len(seen) == 3
    # what the first two saw, both busy and nothing finished yet
    while_busy = [s for s in seen if sorted(e["state"] for e in s.values()) == ["queued", "running", "running"]]
    assert len(while_busy) == 2, seen
    for snapshot in while_busy:
        assert all("device" not in e for e in snapshot.values() if e["state"] == "queued"), snapshot
        assert all(e["device"] == "cpu" for e in snapshot.values() if e["state"] == "running"), snapshot
    assert json.loads((out / "status.json").read_text())["counts"]["done"] == 3
