"""examples/batch-demo.yaml validates, and (slow) runs on CPU."""
import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from guide.batch.schema import load_job
from guide.cli import cli
from guide.toy.world import apply_toy_preset

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "batch-demo.yaml"


def test_example_job_validates():
    job = load_job(EXAMPLE)
    assert job.mode == "joint" and job.generator == "builtin:toy" and job.networks == "toy"
    assert len(job.identities) >= 2 and job.devices == ["cpu"]
    preset = apply_toy_preset(copy.deepcopy(job.erase)).ltu  # the file states the toy world's preset
    assert (job.erase.ltu.lr, job.erase.ltu.losses.global_weight) == (preset.lr, preset.losses.global_weight)
    result = CliRunner().invoke(cli, ["batch", str(EXAMPLE), "--check"])
    assert result.exit_code == 0 and "job file OK" in result.output


@pytest.mark.slow
def test_example_job_runs(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["batch", str(EXAMPLE), "--out", str(out), "--set", "iters=1", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["done"] == len(load_job(EXAMPLE).identities)
    assert (out / "model" / "generator.json").is_file() and (out / "report.md").is_file()
    # the toy networks score ID and ID_others (evaluation.id: auto)
    assert "ID" in (out / "report.md").read_text()
