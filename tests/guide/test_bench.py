"""`guide bench` runs end to end on the tiny model and writes a valid report."""
import json

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
