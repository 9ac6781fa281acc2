"""An erase erases: GUIDE and the baseline on the toy world, measured with the toy CurricularFace.

One GUIDE erase and one baseline erase (toy preset: lr 5e-4, 60 steps, random identity seed 0) are
shared by every test. Thresholds come from measurements of this code (numbers in each test) and
sit between them and the values measured with the method broken on purpose (a UFO sign flip, the
local loss aimed at w_u, the average instead of the extrapolated target, no adjacency term, no
global preservation term); see the report of issue 15 for that table.

The numbers hold for identity seed 0 only. Other identities measured with the same code: seed 1,
GUIDE ID 0.289 but ID_others 0.000 (baseline 0.455 / 0.277); seed 2, GUIDE ID 0.822, ID_others
0.937 (its head is close to the average one). The toy generator does not yet render hair colour,
eyes or mouth, so its heads differ too little for every erase to be this clear.
"""
import pytest

from guide.toy.effect import measure_effect, run_effect


@pytest.fixture(scope="module")
def guide_effect(toy, toy_guide_erase):
    return measure_effect(toy, toy_guide_erase)


@pytest.fixture(scope="module")
def baseline_effect(toy):
    return run_effect(toy, "baseline")[1]


def test_guide_erases_the_identity_and_keeps_the_others(guide_effect):
    """Before the erase ID is 1 (the same generator). Measured after (seed 0, torch 2.14 CPU): ID 0.190,
    ID_others 0.583 (UFO sign flipped: ID 0.903; local loss aimed at w_u: 0.999)."""
    assert guide_effect.id_erased < 0.3
    assert guide_effect.id_others > 0.5
    assert guide_effect.id_others - guide_effect.id_erased > 0.3


def test_guide_turns_the_identity_into_its_target(guide_effect):
    """The unlearned head resembles the source's render of the extrapolated target more than the
    source's average head. Measured: 0.982 vs 0.904 (margin 0.078); average target instead of the
    extrapolated one: 0.754 vs 0.986; sign flip: 0.390 vs 0.745; no adjacency term: 0.941 vs 0.953."""
    assert guide_effect.id_to_target > 0.9
    assert guide_effect.id_to_target > guide_effect.id_to_average + 0.04


def test_guide_erases_the_neighbourhood(guide_effect):
    """Latents near w_u (alpha 6 towards random latents) are erased too: measured ID 0.225; without
    the adjacency term 0.363."""
    assert guide_effect.id_neighbours < 0.29


def test_guide_preserves_other_renders(guide_effect):
    """Other heads' renders stay close to the source's pixel for pixel: measured 21.1 dB; without
    the global preservation term 16.9 dB."""
    assert guide_effect.others_psnr > 19.0


def test_baseline_erases_towards_the_average(baseline_effect):
    """The baseline (average target, local loss only) erases less than GUIDE: measured ID 0.473
    (GUIDE 0.190), ID_others 0.653 (GUIDE 0.583); its head turns into the average one (0.985)."""
    assert baseline_effect.id_erased < 0.6
    assert baseline_effect.id_others > 0.55
    assert baseline_effect.id_to_average > 0.95
