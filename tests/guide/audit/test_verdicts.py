"""The one-line verdicts: share of the ceiling, and which side of the acceptance level."""
from guide.audit.verdicts import HOLDS, LEAKS, attack_line, leakage_line, retained_line, verdicts

RADII = [0.0, 5.0, 15.0, 30.0]


def test_attack_line_reports_the_share_of_the_ceiling_and_the_level():
    held = attack_line("Re-inversion", 0.2, 0.8, 0.4)
    assert "0.200" in held and "0.800" in held and "(25% of the ceiling)" in held and held.endswith(HOLDS)
    assert LEAKS in attack_line("Re-inversion", 0.5, 0.8, 0.4)
    assert LEAKS in attack_line("Re-inversion", 0.4, 0.8, 0.4)  # at the level counts as accepted
    assert HOLDS not in attack_line("Re-inversion", 0.2, 0.8, None) and "25%" in attack_line("x", 0.2, 0.8, None)


def test_leakage_line_names_the_radii_still_accepted():
    line = leakage_line(RADII, [0.1, 0.5, 0.3, 0.1], [1.0, 0.9, 0.6, 0.2], 0.4)
    assert "accepted as the person at r = 5" in line and LEAKS in line
    assert "the source keeps the person up to r = 15" in line
    held = leakage_line(RADII, [0.1, 0.2, 0.3, 0.1], [1.0, 0.3, 0.2, 0.2], 0.4)
    assert HOLDS in held and "up to r = 0)" in held


def test_retained_line_flags_a_too_broad_erasure():
    assert "TOO BROAD" in retained_line(RADII, [0.3, 0.2, 0.1, 0.1], [1.0, 0.9, 0.5, 0.2], 0.4, 4)
    kept = retained_line(RADII, [0.95, 0.9, 0.3, 0.1], [1.0, 0.9, 0.5, 0.2], 0.4, 4)
    assert "TOO BROAD" not in kept and "recognised up to r = 5 (through the source: up to r = 15)" in kept
    assert "no retained" in retained_line(RADII, [], [], 0.4, 0)


def test_verdicts_of_a_record_without_a_photo():
    curve = {"mean": [0.1, 0.1, 0.1, 0.1]}
    record = {"threshold": {"value": 0.4}, "reinversion": {"skipped": "no photo"}, "attack": {"skipped": "no photo"},
              "leakage": {"radii": RADII, "target": {"unlearned": curve, "source": curve},
                          "retained": {"count": 0, "unlearned": [], "source": []}}}
    lines = verdicts(record)
    assert lines["reinversion"] == "Re-inversion: skipped (no photo)"
    assert lines["attack"] == "Optimisation attack: skipped (no photo)"
    assert HOLDS in lines["leakage"]
