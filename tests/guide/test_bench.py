"""`guide bench` runs end to end on the tiny model and writes a valid report."""
import json

import pytest
from click.testing import CliRunner

from guide.cli import cli


def test_bench_tiny_cpu(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--config", "tiny", "--steps", "1", "--warmup", "0",
                                      "--nrr", "16", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["results"]]
    assert names[:2] == ["generator_forward", "ltu_step"]
    assert any(n.startswith("op_bias_act") for n in names)
    assert all(r["ms"] > 0 for r in report["results"])
    assert "generator_forward" in result.output


def test_bench_cuda_absent_is_one_line_error():
    import torch

    if torch.cuda.is_available():
        return
    result = CliRunner().invoke(cli, ["bench", "--device", "cuda"])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.output
    assert "Traceback" not in result.output


def test_table_prints_speedup_over_reference_style_and_peak_memory():
    from guide.bench import format_table, speedups

    def row(name, ms, peak):
        return {"name": name, "ms": ms, "per_s": 1000 / ms, "peak_mem_mb": peak, "extra": {"loss_per_step": [1.0]}}

    results = [row("generator_forward", 20.0, 1200), row("ltu_step", 100.0, 16000),
               row("ltu_step_reference_style", 600.0, 17000), row("erase_loop", 120.0, 16100)]
    assert speedups(results) == {"ltu_step": 6.0, "ltu_step_reference_style": 1.0, "erase_loop": 5.0}
    report = {"environment": {"device": "cuda", "torch": "2", "gpu": "GPU"}, "results": results,
              "settings": {"precision": "tf32", "config": "full", "cuda_graph": True}}
    lines = format_table(report).splitlines()
    assert "cuda_graph" in lines[0] and "x ref" in lines[1] and "peak MiB" in lines[1]
    assert lines[3].split()[1:5] == ["100.00", "10.00", "16000", "6.00"]
    assert lines[5].split()[4] == "5.00" and "loss_per_step" not in lines[3]
    assert speedups(results[:2]) == {}  # no reference-style row, no ratio


@pytest.mark.slow
def test_bench_audit_section_estimates_from_its_parts(tmp_path):
    from guide.audit import audit_workload
    from guide.config import AuditConfig

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--config", "tiny", "--only", "audit", "--steps", "1", "--warmup", "0",
                                      "--nrr", "16", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"audit_attack_step", "audit_render", "audit_score_image", "audit_estimate"}
    work = audit_workload(AuditConfig())
    expected = (work["attack_steps"] * rows["audit_attack_step"]["ms"] + work["renders"] * rows["audit_render"]["ms"]
                + work["scored_images"] * rows["audit_score_image"]["ms"]) / 1000
    assert rows["audit_estimate"]["extra"]["estimated_audit_seconds"] == pytest.approx(expected, abs=0.05)


def test_full_size_ltu_step_on_a_cpu_without_the_memory_is_one_line(monkeypatch):
    """A 24 GB machine was killed building the ~19 GB full-size step; now it is told what to run."""
    import guide.bench
    import guide.commands.bench as command

    ran = []
    monkeypatch.setattr(guide.bench, "run_bench", lambda *a, **k: ran.append(1) or {"results": []})
    monkeypatch.setattr(command, "available_memory_gib", lambda: 15.2, raising=False)
    result = CliRunner().invoke(cli, ["bench", "--only", "ltu_step"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "15.2 GiB are available" in result.output and "--config tiny" in result.output
    assert not ran  # nothing was built
    monkeypatch.setattr(command, "available_memory_gib", lambda: 64.0, raising=False)
    monkeypatch.setattr(guide.bench, "format_table", lambda report: "table")
    assert CliRunner().invoke(cli, ["bench", "--only", "ltu_step"]).exit_code == 0 and ran == [1]
