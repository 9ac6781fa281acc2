"""Job-file validation: one-line errors naming the field, defaults, paths, overrides."""
import json

import pytest
from click.testing import CliRunner

from guide.batch.schema import JobFileError, load_job, parse_job
from guide.cli import cli

from .conftest import write_job

BAD = [
    ({"identities": [{"random": 1}], "mode": "parallel"}, "mode: expected one of independent, joint, sequential"),
    ({"identities": [{"random": 1}], "itres": 3}, "itres: unknown option (did you mean 'iters'?)"),
    ({"identities": [{"random": 1}, {"photo": "a.jpg", "latent": "a.pt"}]},
     "identities[1]: give exactly one of photo, latent, random (got photo, latent)"),
    ({"identities": [{"random": 1}, {"id": "x", "random": 2}, {"id": "x", "random": 3}]},
     "identities[2].id: 'x' is used twice (also identities[1])"),
    ({"identities": [{"id": "random-5", "random": 9}], "random_identities": {"count": 2, "first_seed": 4}},
     "random_identities: 'random-5' is used twice (also identities[0])"),
    ({"identities": [{"random": 1}], "retain": [{"id": "r", "random": 2}, {"id": "R", "random": 3}]},
     "retain[1].id: 'R' is used twice (also retain[0])"),
    ({"identities": [{"id": "model", "random": 1}]}, "identities[0].id: 'model' cannot name a folder"),
    ({"identities": [{"id": "../up", "random": 1}]}, "identities[0].id: '../up' cannot name a folder"),
    ({"identities": [{"random": "seven"}]}, "identities[0].random: expected an integer, got 'seven'"),
    ({"identities": [{"random": 1}], "iters": 0}, "iters: must be at least 1, got 0"),
    ({"identities": [{"random": 1}], "lr": "fast"}, "lr: expected a number, got 'fast'"),
    ({"identities": [{"random": 1}], "losses": {"adj_btch": 1}}, "losses.adj_btch: unknown option (did you mean 'adj_batch'?)"),
    ({"identities": [{"random": 1}], "losses": {"adjacency": "yes"}}, "losses.adjacency: expected true or false"),
    ({"identities": [{"random": 1}], "devices": ["cuda:0", "gpu1"]},
     "devices[1]: expected auto, cpu, cuda, cuda:N or mps"),
    ({"identities": [{"random": 1}], "device": "cpu", "devices": ["cpu"]}, "devices: give device or devices, not both"),
    ({"identities": [{"random": 1}], "sample_identities": 4}, "sample_identities: only applies to mode joint"),
    ({"identities": [{"random": 1}], "mode": "joint", "devices": ["cpu", "cpu"]}, "devices: mode joint trains one model"),
    ({"identities": []}, "identities: no identities to erase"),
    ({"identities": [{"random": 1}], "generator": "builtin:huge"}, "generator: unknown built-in generator"),
    ({"identities": [{"random": 1}], "evaluation": {"views": 0}}, "evaluation.views: must be at least 1"),
    ({"identities": [{"random": 1}], "retain": [{"name": "x"}]}, "retain[0]: give exactly one of photo, latent, random"),
    ({"identities": [{"random": 1}], "inversion": "random"}, "inversion: expected one of deterministic, stochastic"),
    ({"identities": [{"random": 1}], "w_avg": "mean"}, "w_avg: expected one of file, mapping"),
    ({"identities": [{"random": 1}], "camera": {"fov": 20}}, "camera.fov: unknown option"),
    ({"identities": [{"random": 1}], "eg3d_pivot": True, "camera": {"pivot": [0, 0, 0.1]}},
     "eg3d_pivot: give eg3d_pivot or camera.pivot, not both"),
    # counts that size memory or time are bounded (guide.limits), seeds fit torch's 64 bits
    ({"random_identities": {"count": 10**9}}, "random_identities.count: must be at most 100000"),
    ({"identities": [{"random": 1}], "seed": 2**64}, "seed: must be at most 9223372036854775807"),
    ({"identities": [{"random": 2**70}]}, "identities[0].random: must be at most"),
    ({"identities": [{"random": 1}], "iters": 10**12}, "iters: must be at most"),
    ({"identities": [{"random": 1}], "losses": {"adj_batch": 10**9}}, "losses.adj_batch: must be at most 1024"),
    ({"identities": [{"random": 1}], "evaluation": {"views": 10**9}}, "evaluation.views: must be at most 360"),
    ({"identities": [{"random": 1}], "evaluation": {"fid_samples": 10**12}}, "evaluation.fid_samples: must be at most"),
]


@pytest.mark.parametrize("data,message", BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_cli_reports_the_offending_field_on_one_line(tmp_path, data, message):
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps(data))  # JSON is YAML
    result = CliRunner().invoke(cli, ["batch", str(job), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: job file {job}: "), result.output
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


def test_file_level_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["batch", str(tmp_path / "nope.yaml"), "--check"])
    assert missing.exit_code == 2 and "not found" in missing.output and "Traceback" not in missing.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("mode: joint\nidentities: [ {random: 1}\n")
    result = runner.invoke(cli, ["batch", str(broken), "--check"])
    assert result.exit_code == 2 and "not valid YAML (line" in result.output
    bad_json = tmp_path / "job.json"
    bad_json.write_text('{"mode": "joint",}')
    result = runner.invoke(cli, ["batch", str(bad_json), "--check"])
    assert result.exit_code == 2 and "not valid JSON" in result.output
    scalar = tmp_path / "list.yaml"
    scalar.write_text("- {random: 1}\n")
    result = runner.invoke(cli, ["batch", str(scalar), "--check"])
    assert result.exit_code == 2 and "expected a mapping of options at the top" in result.output
    ok = write_job(tmp_path / "ok.yaml", identities=[{"random": 1}])
    bad_set = runner.invoke(cli, ["batch", str(ok), "--check", "--set", "iters"])
    assert bad_set.exit_code == 2 and "expected KEY=VALUE" in bad_set.output
    no_out = runner.invoke(cli, ["batch", str(ok)])
    assert no_out.exit_code == 2 and "--out" in no_out.output


def test_defaults_paths_overrides(tmp_path):
    (tmp_path / "sub").mkdir()
    job_path = write_job(tmp_path / "sub" / "job.yaml", mode="joint", identities=[
        {"id": "alice", "name": "Alice", "photo": "photos/alice.jpg"}, {"latent": "/abs/bob.pt"}, {"random": 7}],
        random_identities={"count": 2, "first_seed": 100}, sample_identities=2, generator="G.pkl",
        retain=[{"random": 5}])
    job = load_job(job_path, ["iters=3", "evaluation.views=2", "losses.adj_batch=2"])
    assert [i.id for i in job.identities] == ["alice", "bob", "random-7", "random-100", "random-101"]
    assert job.identities[0].value == str(tmp_path / "sub" / "photos" / "alice.jpg")
    assert job.identities[0].name == "Alice" and job.identities[1].value == "/abs/bob.pt"
    assert job.generator == str(tmp_path / "sub" / "G.pkl")
    assert job.erase.ltu.iters == 3 and job.evaluation.views == 2 and job.erase.ltu.losses.adj_batch == 2
    assert job.erase.ltu.lr == 1e-3 and job.sample_identities == 2 and job.retain[0].id == "random-5"
    assert job.devices == ["cpu"] and job.resolved_executor() == "serial"

    plain = parse_job({"identities": [{"random": 1}], "method": "baseline", "lr": "1e-4"})
    assert plain.mode == "independent" and plain.erase.ltu.iters == 1000 and plain.erase.ltu.lr == 1e-4
    assert plain.erase.target.method == "average" and not plain.erase.ltu.losses.adjacency
    many = parse_job({"identities": [{"random": 1}, {"random": 2}], "devices": ["cuda:0", "cuda:1"]})
    assert many.resolved_executor() == "processes"
    with pytest.raises(JobFileError, match="version"):
        parse_job({"identities": [{"random": 1}], "version": 2})


def test_check_prints_the_plan(tmp_path):
    job = write_job(tmp_path / "job.yaml", mode="sequential", identities=[{"random": 1}, {"random": 2}])
    result = CliRunner().invoke(cli, ["batch", str(job), "--check"])
    assert result.exit_code == 0, result.output
    assert "mode sequential, 2 identities (2 random)" in result.output and "job file OK" in result.output


def test_the_reference_protocol_keys():
    """aligned / inversion / w_avg / camera / truncation_cutoff fill the EraseConfig (defaults: ours)."""
    job = parse_job({"identities": [{"random": 1}], "aligned": True, "inversion": "stochastic", "w_avg": "mapping",
                     "truncation_cutoff": None, "camera": {"fov_degrees": 20, "pitch_offset": -0.1,
                                                           "yaw_range": 0.3, "pivot": [0, 0, 0.1]}})
    inversion, ltu = job.erase.inversion, job.erase.ltu
    assert (inversion.aligned, inversion.mode, inversion.w_avg) == (True, "stochastic", "mapping")
    assert ltu.truncation_cutoff is None and ltu.camera.pivot == (0.0, 0.0, 0.1)
    assert (ltu.camera.fov_degrees, ltu.camera.pitch_offset, ltu.camera.yaw_range) == (20.0, -0.1, 0.3)
    default = parse_job({"identities": [{"random": 1}]}).erase
    assert (default.inversion.aligned, default.inversion.mode, default.inversion.w_avg) == \
        (False, "deterministic", "file")


BOMBS = {
    # 9 levels of 10 aliases: 10**9 strings once expanded (the classic "billion laughs", 600 bytes)
    "billion laughs": "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdefgh", "bcdefghi")) + "identities: *i\n",
    "recursive alias": "identities: &loop [*loop]\n",
    "deep nesting": "identities: " + "[" * 5000 + "]" * 5000 + "\n",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_yaml_bombs_give_one_line_quickly(tmp_path, name):
    import time

    job = tmp_path / "job.yaml"
    job.write_text(BOMBS[name])
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["batch", str(job), "--check"])
    assert time.perf_counter() - start < 5
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.startswith(f"error: job file {job}: ") and len(result.output.strip().splitlines()) == 1
    assert ("values" if name == "billion laughs" else "nested deeper") in result.output


def test_deeply_nested_json_job_file(tmp_path):
    job = tmp_path / "job.json"
    job.write_text('{"identities": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(JobFileError, match="nested deeper"):
        load_job(job)


@pytest.mark.parametrize("line, field", [("truncation_psi: .nan", "truncation_psi"), ("lr: .inf", "lr"),
                                         ("losses: {global_weight: .inf}", "losses.global_weight"),
                                         ("target_distance: .nan", "target_distance")])
def test_non_finite_numbers_refused(tmp_path, line, field):
    job = tmp_path / "job.yaml"
    job.write_text(f"identities: [{{random: 1}}]\n{line}\n")
    with pytest.raises(JobFileError, match=f"{field}: "):
        load_job(job)
