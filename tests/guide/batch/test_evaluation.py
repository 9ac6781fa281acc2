"""The evaluation adapter: when it is used, and that it speaks guide.evaluate's current API."""
import pytest
import torch

from guide.batch.evaluation import PackageEvaluator, RetainSet, evaluation_package_available, evaluator_for, renders
from guide.batch.schema import EvaluationOptions, parse_job
from guide.config import CameraConfig


def test_evaluator_choice():
    off = parse_job({"identities": [{"random": 1}], "networks": "random"})
    evaluator, note = evaluator_for(off, None, "cpu")
    assert evaluator is None and "networks: checkpoints" in note
    none = parse_job({"identities": [{"random": 1}], "evaluation": {"id": False}})
    assert evaluator_for(none, None, "cpu")[0] is None
    wanted = parse_job({"identities": [{"random": 1}], "evaluation": {"fid": True}})
    evaluator, note = evaluator_for(wanted, None, "cpu")
    if evaluation_package_available()[0]:
        assert isinstance(evaluator, PackageEvaluator) and "FID_pre" in note
    else:
        assert evaluator is None and "not usable" in note


def test_retain_pixel_metrics():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    metrics = RetainSet.pixel_metrics(["x", "y"], [(a, a), (a, b)])
    assert metrics["retain_pixel_l1"] == pytest.approx(0.25)
    assert metrics["retain_pixel_l1_per_identity"] == {"x": 0.0, "y": 0.5}
    assert RetainSet.pixel_metrics([], []) == {}


def test_package_adapter_against_guide_evaluate(tiny_generator_factory):
    ok, why = evaluation_package_available()
    if not ok:
        pytest.skip(why)
    G = tiny_generator_factory()
    camera = CameraConfig()
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)), torch.zeros(1, 25))
    before, after = renders(G, w, camera, 2), renders(G, w * 0.9, camera, 2)
    evaluator = PackageEvaluator(EvaluationOptions(views=2, fid_samples=4), None, "cpu", do_id=True, do_fid=True,
                                 random_weights=True)
    ids = evaluator.identity(before, after, [(before, after)])
    assert "evaluation_error" not in ids, ids
    assert ids["ID"] is not None and ids["ID_others"] is not None
    model = evaluator.model(G, G, camera)
    assert "evaluation_error" not in model, model
    assert "FID_pre" in model
