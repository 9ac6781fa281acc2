"""One-model modes interrupted mid-training continue from their checkpoints with --resume."""
import json

import pytest
from click.testing import CliRunner

import guide.erase
from guide.batch.runner import run_batch
from guide.batch.schema import load_job
from guide.cli import cli

from .conftest import write_job



def _interrupting_train_ltu(calls, interrupt_on_call):
    real = guide.erase.train_ltu

    def train_ltu(trainer, out_dir, *, resuming=False, **kw):
        calls.append((out_dir.name, resuming, trainer.step_index))
        if len(calls) == interrupt_on_call:
            def on_step(step, values):
                raise KeyboardInterrupt  # after the state of step 1 is saved (checkpoint_every 1)
            kw["on_step"] = on_step
        return real(trainer, out_dir, resuming=resuming, **kw)

    return train_ltu


@pytest.mark.parametrize("mode", ["sequential", "joint"])
def test_resume_continues_the_interrupted_training(tmp_path, tiny_resources, monkeypatch, mode):
    calls = []
    interrupt_on = 2 if mode == "sequential" else 1  # sequential: in stage 2; joint: in its one run
    monkeypatch.setattr(guide.erase, "train_ltu", _interrupting_train_ltu(calls, interrupt_on))
    job = load_job(write_job(tmp_path / "job.yaml", mode=mode, iters=2,
                             identities=[{"id": "a", "random": 1}, {"id": "b", "random": 2}]))
    out = tmp_path / "out"
    quiet = dict(evaluator=None, progress=False, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        run_batch(job, out, resources=tiny_resources(), **quiet)
    states = {i: e["state"] for i, e in json.loads((out / "status.json").read_text())["identities"].items()}
    assert states == ({"a": "done", "b": "running"} if mode == "sequential" else {"a": "running", "b": "running"})

    summary = run_batch(job, out, resume=True, resources=tiny_resources(), **quiet)
    assert summary.exit_code == 0
    if mode == "sequential":
        assert calls == [("a", False, 0), ("b", False, 0), ("b", True, 0)]
        provenance = json.loads((out / "model" / "generator.json").read_text())["provenance"]
        assert provenance["batch"]["stages"] == ["a", "b"]
        assert len((out / "b" / "losses.jsonl").read_text().splitlines()) == 2
        rows = (out / "model" / "evaluations.jsonl").read_text().splitlines()
        assert [json.loads(r)["erased"] for r in rows] == ["a", "b"]
    else:
        assert calls == [("model", False, 0), ("model", True, 0)]
        assert len((out / "model" / "losses.jsonl").read_text().splitlines()) == 2
        assert json.loads((out / "model" / "metrics.json").read_text())["steps"] == 2


def test_cli_interrupt_exits_130_and_prints_the_resume_command(tmp_path, monkeypatch):
    """Ctrl-C: exit 130 and the command to continue -- with the same --set overrides, which a
    resume checks against the interrupted batch."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("guide.batch.runner.run_batch", interrupted)
    job = write_job(tmp_path / "job.yaml", identities=[{"random": 1}])
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(out), "--set", "iters=2",
                                      "--set", "evaluation.views=1", "--quiet"])
    assert result.exit_code == 130, result.output
    assert (f"interrupted; continue with: guide batch {job} --out {out} --set iters=2 --set evaluation.views=1 "
            "--resume") in result.output
