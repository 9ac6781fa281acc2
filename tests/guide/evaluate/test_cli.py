"""`guide eval`: end to end on a tiny erase output with random-weight networks, and bad input."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import guide.evaluate.fid as fid_module
from guide.cli import cli

FOUR = ("ID", "ID_others", "FID_pre", "delta_FID_real")


def run(args):
    result = CliRunner().invoke(cli, ["eval", *map(str, args)])
    return result, result.output  # stdout and stderr as a terminal shows them


def assert_one_line_error(result, text, *needles):
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, text
    for needle in needles:
        assert needle in errors[0], errors[0]


# ---------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, erase_output_template):
    """`guide eval all` once on a copy of the tiny erase output (random networks, N=8)."""
    import shutil

    base = tmp_path_factory.mktemp("eval_all")
    out = base / "run"
    shutil.copytree(erase_output_template, out)
    real = base / "real_feat.npy"
    np.save(real, np.abs(np.random.default_rng(0).normal(0.2, 0.05, size=(40, 2048))).astype(np.float32))
    cache = base / "cache"
    result, text = run(["all", out, "--real", real, "--num", 8, "--batch", 4, "--others-random", 1,
                        "--random-networks", "--cache", cache])
    return out, cache, result, text


@pytest.mark.slow
def test_eval_all_writes_the_four_numbers(evaluated):
    out, cache, result, text = evaluated
    assert result.exit_code == 0, text
    metrics = json.loads((out / "metrics.json").read_text())
    for key in FOUR:
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), key
        assert key in result.output
    assert metrics["steps"] == 3 and metrics["pixel_l1_before_after"] == 0.1  # merged, not clobbered
    assert -1.0 <= metrics["ID"] <= 1.0 and -1.0 <= metrics["ID_others"] <= 1.0
    assert metrics["FID_pre"] > 0  # the generators differ
    fid = metrics["fid"]
    assert metrics["delta_FID_real"] == pytest.approx(fid["FID_real_unlearned"] - fid["FID_real_pretrained"])
    assert fid["num_samples"] == 8 and fid["settings"]["truncation_psi"] == 1.0
    assert metrics["identity"]["num_views"] == 3 and len(metrics["identity"]["ID_others_per_identity"]) == 1
    assert metrics["evaluation"]["random_networks"] is True
    assert len(list(cache.glob("*.npy"))) == 2  # pretrained and unlearned features


@pytest.mark.slow
def test_report_is_self_contained_and_shows_the_numbers(evaluated):
    out, _, result, _ = evaluated
    assert result.exit_code == 0
    page = (out / "report.html").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"{metrics['ID']:.4f}" in page and f"{metrics['ID_others']:.4f}" in page
    assert f"{metrics['FID_pre']:.4g}" in page and f"{metrics['delta_FID_real']:+.4g}" in page
    for key in FOUR:
        assert f"data-metric='{key}'" in page
    assert page.count("data:image/png;base64,") >= 3  # grid, target, (composed) images inline
    assert "src='http" not in page and 'src="http' not in page
    assert "RANDOM-weight" in page and "n/a" in page  # warning, and no published values for Random
    assert "No published values for this method and scenario" in page
    assert "data-metric='images_without_detected_face'" in page


@pytest.mark.slow
def test_fid_of_two_generators_reuses_the_cached_features(evaluated, monkeypatch):
    out, cache, result, _ = evaluated
    assert result.exit_code == 0

    def no_rendering(*args, **kwargs):
        raise AssertionError("features should have come from the cache")

    monkeypatch.setattr(fid_module, "render_samples", no_rendering)
    config = json.loads((out / "config.json").read_text())
    # same count and batch as `eval all` above: the paper protocol's noise depends on both
    again, text = run(["fid", "--pretrained", config["source_generator"], "--unlearned", out / "generator.json",
                       "--no-real", "--num", 8, "--batch", 4, "--random-networks", "--cache", cache,
                       "--no-progress"])
    assert again.exit_code == 0, text
    metrics = json.loads((out / "metrics.json").read_text())
    line = next(x for x in again.output.splitlines() if x.startswith("FID_pre"))
    assert float(line.split()[1]) == pytest.approx(metrics["FID_pre"], rel=1e-5)


# ----------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("command", ["id", "fid", "all"])
def test_folder_that_is_not_an_erase_output(tmp_path, command, real_features):
    (tmp_path / "something.txt").write_text("hello")
    result, text = run([command, tmp_path, "--real", real_features, "--random-networks"]
                       if command != "id" else [command, tmp_path, "--random-networks"])
    assert_one_line_error(result, text, "not a `guide erase` output folder", "config.json")


def test_missing_folder(tmp_path):
    result, text = run(["id", tmp_path / "nope", "--random-networks"])
    assert_one_line_error(result, text, "is not a folder")


def test_missing_real_statistics_file(erase_output, tmp_path):
    """A --real file that is given but missing is an error; no real statistics at all is not
    (tests/guide/evaluate/test_pipeline.py)."""
    result, text = run(["fid", erase_output, "--real", tmp_path / "missing.npy", "--random-networks"])
    assert_one_line_error(result, text, "missing.npy", "not found")


def test_mismatched_feature_dimension(erase_output, tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((10, 64), np.float32))
    result, text = run(["fid", erase_output, "--real", tmp_path / "small.npy", "--random-networks"])
    assert_one_line_error(result, text, "2048")
    np.savez(tmp_path / "stats.npz", mu=np.zeros(64), sigma=np.eye(64))
    result, text = run(["all", erase_output, "--real", tmp_path / "stats.npz", "--random-networks"])
    assert_one_line_error(result, text, "2048")


def test_fid_needs_a_folder_or_two_generators(tmp_path):
    result, text = run(["fid", "--pretrained", tmp_path / "g.pkl", "--no-real", "--random-networks"])
    assert_one_line_error(result, text, "--pretrained and --unlearned")


def test_source_generator_that_changed(erase_output):
    config = json.loads((erase_output / "config.json").read_text())
    config["source_generator_sha256"] = "0" * 64
    (erase_output / "config.json").write_text(json.dumps(config))
    result, text = run(["fid", erase_output, "--no-real", "--num", 2, "--random-networks"])
    assert_one_line_error(result, text, "sha256", "--pretrained")


def test_bad_latents_for_others(erase_output, tmp_path):
    import torch

    torch.save({"w": torch.zeros(3, 7)}, tmp_path / "bad.pt")
    result, text = run(["id", erase_output, "--others-latents", tmp_path / "bad.pt", "--random-networks"])
    assert_one_line_error(result, text, "bad.pt")


def test_report_command_rewrites_from_metrics(erase_output):
    result, text = run(["report", erase_output])
    assert result.exit_code == 0, text
    page = (erase_output / "report.html").read_text()
    assert "ID was not computed" in page and "data:image/png;base64," in page


def test_a_missing_network_is_reported_before_any_rendering(erase_output, tmp_path, monkeypatch):
    """`guide eval id` used to render the other identities for minutes, then say CurricularFace is missing."""
    rendered = []
    monkeypatch.setattr("guide.evaluate.pipeline.render_before_after", lambda *a, **k: rendered.append(1) or [])
    result, text = run(["id", erase_output, "--checkpoints", tmp_path / "empty", "--others-random", 2])
    assert_one_line_error(result, text, "CurricularFace_Backbone.pth")
    assert not rendered


@pytest.mark.parametrize("value", ["nan", "stride0"])
def test_implausible_latents_for_others(erase_output, tmp_path, value):
    import torch

    w = torch.full((1, 14, 512), float("nan")) if value == "nan" else torch.zeros(1).expand(1 << 24, 14, 512)
    torch.save({"w": w}, tmp_path / "odd.pt")
    result, text = run(["id", erase_output, "--others-latents", tmp_path / "odd.pt", "--random-networks"])
    assert_one_line_error(result, text, "odd.pt")
