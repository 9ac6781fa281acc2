"""Audits in batches: the job-file option, and a sequential batch audited against its final model."""
import json

import pytest

from guide.batch.schema import JobFileError, load_job
from tests.guide.batch.conftest import write_job


@pytest.mark.parametrize("value, expected", [(True, {}), (False, None),
                                             ({"steps": 5, "radii": [0, 5], "far": 0.001},
                                              {"steps": 5, "radii": [0.0, 5.0], "far": 0.001})])
def test_evaluation_audit_option(tmp_path, value, expected):
    job = load_job(write_job(tmp_path / "job.yaml", identities=[{"random": 1}], evaluation={"audit": value}))
    assert job.evaluation.audit == expected


@pytest.mark.parametrize("value, message", [({"stepz": 5}, "evaluation.audit.stepz: unknown option"),
                                            ({"radii": 5}, "evaluation.audit.radii: expected a list"),
                                            ({"far": 2}, "evaluation.audit.far"),
                                            ({"steps": 0}, "evaluation.audit.steps: must be at least 1"),
                                            ("yes", "evaluation.audit: expected a mapping")])
def test_bad_audit_option_is_one_line(tmp_path, value, message):
    with pytest.raises(JobFileError, match=message):
        load_job(write_job(tmp_path / "job.yaml", identities=[{"random": 1}], evaluation={"audit": value}))


@pytest.mark.slow
def test_sequential_batch_audits_every_identity_against_the_final_model(tmp_path, audit_source, audit_networks,
                                                                        monkeypatch):
    from guide.batch.resources import Resources
    from guide.batch.runner import run_batch
    from guide.erase import Networks

    monkeypatch.setattr("guide.audit.networks.load_audit_networks", lambda *a, **k: audit_networks)
    job = load_job(write_job(tmp_path / "job.yaml", mode="sequential", networks="random",
                             identities=[{"id": "first", "random": 1}, {"id": "second", "random": 2}],
                             retain=[{"random": 50}],
                             evaluation={"views": 1, "audit": {"radii": [0, 5], "directions": 1, "impostors": 3}}))
    resources = Resources(audit_source, Networks(audit_networks.lpips, audit_networks.id_loss))
    logged = []
    summary = run_batch(job, tmp_path / "out", resources=resources, evaluator=None, progress=False,
                        log=logged.append)
    assert summary.exit_code == 0
    model = str((tmp_path / "out" / "model" / "generator.json").resolve())
    for ident in ("first", "second"):
        record = json.loads((tmp_path / "out" / ident / "audit.json").read_text())
        assert record["generators"]["unlearned"]["path"] == model  # after the last stage, for both
        assert record["leakage"]["retained"]["identities"] == "1 retained identities of the job"
        metrics = json.loads((tmp_path / "out" / ident / "metrics.json").read_text())
        assert metrics["audit"]["leakage_radii"] == [0.0, 5.0] and set(metrics["audit"]["verdicts"]) == {
            "reinversion", "attack", "leakage", "retained"}
        assert metrics["audit"]["leakage_unlearned"][0] is not None
    assert any(line.startswith("audit: first: Re-inversion: skipped") for line in logged)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "audit" in report["identities"]["second"]["metrics"]
