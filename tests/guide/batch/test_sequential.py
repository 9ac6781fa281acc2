"""Mode sequential: identities one after another into one model, evaluated after each stage."""
import json

from guide.batch.runner import run_batch
from guide.batch.schema import load_job

from .conftest import write_job


def test_sequential_evaluates_all_erased_identities_after_each_stage(tmp_path, tiny_resources, stub_evaluator):
    job = load_job(write_job(tmp_path / "job.yaml", mode="sequential", w_avg="mapping",
                             identities=[{"id": "first", "random": 1}, {"id": "broken", "latent": "nope.pt"},
                                         {"id": "second", "random": 2}],
                             retain=[{"random": 50}]))
    out = tmp_path / "out"
    summary = run_batch(job, out, resources=tiny_resources(), evaluator=stub_evaluator, progress=False,
                        log=lambda m: None)
    assert summary.exit_code == 1 and summary.counts == {"pending": 0, "queued": 0, "running": 0,
                                                         "done": 2, "failed": 1}
    rows = [json.loads(line) for line in (out / "model" / "evaluations.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == [1, 2] and [r["erased"] for r in rows] == ["first", "second"]
    assert list(rows[0]["identities"]) == ["first"] and list(rows[1]["identities"]) == ["first", "second"]
    for row in rows:
        assert "retain_pixel_l1" in row["model"]
        for metrics in row["identities"].values():
            assert metrics["pixel_l1_after_target"] > 0 and "pixel_l1_before_after" in metrics
            assert metrics["ID"] == 0.25
    provenance = json.loads((out / "model" / "generator.json").read_text())["provenance"]
    assert provenance["batch"]["stages"] == ["first", "second"]
    assert json.loads((out / "second" / "metrics.json").read_text())["stage"] == 2
    assert (out / "first" / "losses.png").is_file() and (out / "second" / "renders" / "after_00.png").is_file()
    status = json.loads((out / "status.json").read_text())
    assert "latent file not found" in status["identities"]["broken"]["reason"]
    assert stub_evaluator.model_calls == 1  # FID once, for the final model
    report = json.loads((out / "report.json").read_text())
    assert len(report["after_each_stage"]) == 2 and report["model"]["stages"] == ["first", "second"]
    assert "## After each stage" in (out / "report.md").read_text()
