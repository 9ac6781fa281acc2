"""The published values (guide/evaluate/reference.py) beside ours: lookup, differences, report."""
import json

import pytest

from guide.evaluate.reference import SOURCE, comparison, method_of, published, scenario_of

# the reference README's OOD numbers, as the issue quotes them
README_OOD = {"baseline": (0.0818, 0.4122, 9.487, 4.891), "guide": (0.0183, 0.2797, 7.497, 3.331)}


@pytest.mark.parametrize("method", ["baseline", "guide"])
def test_published_ood_values_and_nothing_else(method):
    values = published(method, "OOD")
    assert tuple(values[k] for k in ("ID", "ID_others", "FID_pre", "delta_FID_real")) == README_OOD[method]
    for scenario in ("Random", "InD", None):
        assert set(published(method, scenario).values()) == {None}  # n/a, never guessed


def test_scenario_and_method_from_the_settings():
    assert scenario_of({"identity": {"kind": "folder", "value": "d", "index": 0}}) == "OOD"
    assert scenario_of({"identity": {"kind": "random", "value": 1}}) == "Random"
    assert scenario_of({"identity": {"kind": "photo", "value": "x.jpg"}}) is None  # InD or OOD: cannot tell
    assert method_of({"erase": {"method": "baseline"}}) == "baseline" and method_of({}) is None


def test_comparison_differences():
    entry = comparison({"ID": 0.05, "ID_others": None, "FID_pre": 10.0}, "guide", "OOD")
    assert entry["source"] == SOURCE and entry["values"]["ID"] == 0.0183
    assert entry["difference"]["ID"] == pytest.approx(0.05 - 0.0183)
    assert entry["difference"]["ID_others"] is None and entry["difference"]["delta_FID_real"] is None
    assert comparison({"ID": 0.1}, "guide", "Random")["source"] is None


def test_report_shows_published_values_and_undetected_faces(erase_output):
    from guide.evaluate.erase_output import EraseOutput
    from guide.evaluate.report import render_report

    config = json.loads((erase_output / "config.json").read_text())
    config["identity"] = {"kind": "folder", "value": "photos", "index": 0}
    (erase_output / "config.json").write_text(json.dumps(config))
    metrics = {"ID": 0.05, "ID_others": 0.3, "FID_pre": 8.0, "delta_FID_real": None,
               "delta_FID_real_note": "ΔFID_real needs real statistics: pass --real FEATS",
               "identity": {"images_without_detected_face": 3, "no_face_policy": "fixed"}}
    page = render_report(EraseOutput.open(erase_output), metrics)
    assert "published (guide, OOD)" in page and "<td data-published='ID'>0.0183</td>" in page
    assert "+0.0317" in page  # 0.05 - 0.0183
    assert "data-metric='images_without_detected_face'>3<" in page
    assert "delta_FID_real was not computed: ΔFID_real needs real statistics" in page
