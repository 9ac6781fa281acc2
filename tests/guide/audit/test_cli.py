"""`guide audit` end to end on an erase folder (random networks), its determinism, and bad input as
one line with a non-zero exit and nothing written."""
import json
import shutil

import pytest
from click.testing import CliRunner

from guide.cli import cli
from tests.guide.audit.conftest import altered
from tests.guide.evaluate.conftest import build_erase_output

FAST = ["--views", "2", "--radii", "0,5", "--directions", "1", "--impostors", "3", "--others-random", "0",
        "--no-progress", "--random-networks"]


@pytest.fixture(scope="module")
def template(tmp_path_factory, audit_source):
    return build_erase_output(tmp_path_factory.mktemp("audit-cli") / "run", audit_source, altered(audit_source), 2)


@pytest.fixture
def erase_folder(template, tmp_path):
    """A private copy of the erase folder (its source generator path stays valid)."""
    out = tmp_path / "run"
    shutil.copytree(template, out)
    return out


@pytest.mark.slow
def test_audit_command_end_to_end(erase_folder, tmp_path):
    runner = CliRunner()
    args = ["audit", str(erase_folder), *FAST, "--checkpoints", str(tmp_path / "none")]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "Re-inversion: skipped (no photo: the erasure was made from a random seed" in first.output
    assert "Leakage radius:" in first.output and "Neighbours kept: no retained identities" in first.output
    assert "RANDOM-weight networks" in first.output
    record = json.loads((erase_folder / "audit.json").read_text())
    assert record["random_networks"] and record["settings"]["leakage"]["radii"] == [0.0, 5.0]
    assert record["generators"]["source"]["sha256"] == json.loads(
        (erase_folder / "config.json").read_text())["source_generator_sha256"]
    assert "<h2>Audit</h2>" in (erase_folder / "report.html").read_text()
    assert not (erase_folder / "audit_attack.png").exists()  # no photo, no attack renders

    again = runner.invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output and "Traceback" not in again.output


def test_folder_without_latents_is_one_line(erase_folder):
    broken = erase_folder
    (broken / "latents.pt").unlink()
    result = CliRunner().invoke(cli, ["audit", str(broken), *FAST])
    assert result.exit_code == 2 and "missing latents.pt" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (broken / "audit.json").exists()


def test_a_generator_that_is_no_copy_of_the_source_is_one_line(erase_folder, tmp_path, tiny_generator_factory):
    from guide.io import save_generator

    stranger = save_generator(tiny_generator_factory(seed=3), tmp_path / "stranger").config
    folder = erase_folder
    result = CliRunner().invoke(cli, ["audit", str(folder), "--pretrained", str(stranger), *FAST])
    assert result.exit_code == 2 and "not an unlearned copy of the source" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (folder / "audit.json").exists()


def test_bad_radii_are_one_line(erase_folder):
    result = CliRunner().invoke(cli, ["audit", str(erase_folder), "--radii", "5,0"])
    assert result.exit_code == 2 and "increasing order" in result.output
