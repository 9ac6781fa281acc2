"""Reading erase output folders: layouts, settings, metrics merging (no rendering)."""
import json

import numpy as np
import pytest
from PIL import Image

from guide.evaluate.erase_output import EraseOutput, NotAnEraseOutputError
from guide.evaluate.pipeline import Generators


def write_png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "out"
    for i in range(11):
        write_png(root / "renders" / f"before_{i:02d}.png")
        write_png(root / "renders" / f"after_{i:02d}.png")
    (root / "generator.json").write_text("{}")
    (root / "config.json").write_text(json.dumps({"source_generator": "built-in", "method": "guide"}))
    return root


def test_views_sort_numerically_and_camera_defaults(folder):
    run = EraseOutput.open(folder)
    assert [p.name for p in run.before_paths][:3] == ["before_00.png", "before_01.png", "before_02.png"]
    assert run.before_paths[-1].name == "before_10.png" and len(run.after_paths) == 11
    assert run.camera.radius == 2.7 and run.camera.pivot == (0.0, 0.0, 0.0)
    assert run.source_generator is None and run.target_path is None


def test_camera_top_level_or_nested_and_target_layouts(folder):
    config = {"camera": {"fov_degrees": 20.0, "pivot": [0, 0, 0.2], "radius": 2.5, "yaw_range": 0.1,
                         "pitch_offset": -0.1}}
    (folder / "config.json").write_text(json.dumps(config))
    assert EraseOutput.open(folder).camera.pivot == (0.0, 0.0, 0.2)
    (folder / "config.json").write_text(json.dumps({"erase": {"ltu": {"camera": {"radius": 3.0}}}}))
    assert EraseOutput.open(folder).camera.radius == 3.0
    for i in range(11):
        write_png(folder / "renders" / f"target_{i:02d}.png")
    assert EraseOutput.open(folder).target_path.name == "target_05.png"
    write_png(folder / "renders" / "target.png")
    assert EraseOutput.open(folder).target_path.name == "target.png"


def test_incomplete_folders(folder):
    (folder / "renders" / "after_03.png").unlink()
    with pytest.raises(NotAnEraseOutputError, match="11 before_XX.png but 10 after_XX.png"):
        EraseOutput.open(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(NotAnEraseOutputError, match="cannot read settings file"):
        EraseOutput.open(folder)
    (folder / "config.json").unlink()
    (folder / "generator.json").unlink()
    with pytest.raises(NotAnEraseOutputError, match="missing config.json, generator.json"):
        EraseOutput.open(folder)


def test_metrics_are_merged_not_clobbered(folder):
    (folder / "metrics.json").write_text(json.dumps({"steps": 5, "fid": {"old": 1, "num_samples": 10}}))
    run = EraseOutput.open(folder)
    merged = run.merge_metrics({"FID_pre": 2.5, "fid": {"num_samples": 20}})
    assert merged == {"steps": 5, "FID_pre": 2.5, "fid": {"old": 1, "num_samples": 20}}
    assert json.loads((folder / "metrics.json").read_text()) == merged


def test_built_in_source_needs_pretrained(folder):
    with pytest.raises(Exception, match="--pretrained"):
        Generators(EraseOutput.open(folder)).pretrained()


@pytest.mark.parametrize("name", ["config.json", "metrics.json"])
def test_deeply_nested_json_is_one_line(folder, name):
    (folder / name).write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(NotAnEraseOutputError, match="nested deeper"):
        EraseOutput.open(folder).read_metrics()
