"""`guide reproduce ood`: the --demo run end to end (toy world, random GOAE), bad input."""
import json

import pytest
from click.testing import CliRunner

from guide.cli import cli


@pytest.mark.slow
def test_demo_writes_the_table_with_the_published_numbers(tmp_path):
    out = tmp_path / "repro"
    result = CliRunner().invoke(cli, ["reproduce", "ood", "--demo", "--out", str(out), "--iters", "1",
                                      "--fid-samples", "4", "--fid-batch", "4", "--views", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| b")
            or line.startswith("| g")}
    assert set(rows) == {"baseline", "guide"}
    for value in ("0.0818", "0.4122", "9.487", "4.891"):
        assert value in rows["baseline"]
    for value in ("0.0183", "0.2797", "7.497", "3.331"):
        assert value in rows["guide"]
    assert "DEMO run" in table and "KHU-AGI/GUIDE" in table
    page = (out / "report.html").read_text()
    assert "0.0183" in page and page.count("data:image/png;base64,") == 2
    for method in ("baseline", "guide"):
        metrics = json.loads((out / method / "metrics.json").read_text())
        config = json.loads((out / method / "config.json").read_text())
        assert config["identity"] == {"kind": "folder", "value": str(out / "demo" / "photos"), "index": 0}
        inversion = config["erase"]["inversion"]
        assert (inversion["aligned"], inversion["mode"], config["erase"]["renders"]) == (True, "stochastic", "random")
        assert len(metrics["identity"]["ID_others_per_identity"]) == 4  # the folder's other photos
        assert metrics["published"]["scenario"] == "OOD" and metrics["fid"]["settings"]["sampling"] == "paper"
        assert all(isinstance(metrics[k], float) for k in ("ID", "ID_others", "FID_pre", "delta_FID_real"))
    again = CliRunner().invoke(cli, ["reproduce", "ood", "--demo", "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output and "Traceback" not in again.output


def test_photo_dir_or_demo(tmp_path):
    runner = CliRunner()
    neither = runner.invoke(cli, ["reproduce", "ood", "--out", str(tmp_path / "o")])
    assert neither.exit_code == 2 and "PHOTO_DIR, or --demo" in neither.output
    missing = runner.invoke(cli, ["reproduce", "ood", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                                  "--checkpoints", str(tmp_path)])
    assert missing.exit_code == 2 and "error: photo folder not found" in missing.output
    (tmp_path / "photos").mkdir()
    no_files = runner.invoke(cli, ["reproduce", "ood", str(tmp_path / "photos"), "--out", str(tmp_path / "o"),
                                   "--checkpoints", str(tmp_path)])
    assert no_files.exit_code != 0 and "ffhqrebalanced512-128.pkl" in no_files.output
    assert "Traceback" not in no_files.output
