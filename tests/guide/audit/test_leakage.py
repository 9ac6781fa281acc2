"""The leakage curves: unit directions from a seed, the r = 0 point equal to the evaluation's ID, the
source's curve starting at 1 and falling as the latent leaves the person."""
import pytest
import torch

from guide.audit.leakage import seeded_generator, unit_directions
from guide.audit.pipeline import audit_generators
from guide.config import AuditConfig, CameraConfig, LeakageConfig
from tests.guide.audit.conftest import NUM_VIEWS, altered, w_avg_of
from tests.guide.evaluate.conftest import build_erase_output


@pytest.mark.parametrize("kind", ["mapped", "isotropic"])
def test_directions_are_unit_and_come_from_the_seed(audit_source, erased_latent, kind):
    camera = CameraConfig()
    a = unit_directions(audit_source, erased_latent, 3, kind, camera, seeded_generator(5, 2))
    b = unit_directions(audit_source, erased_latent, 3, kind, camera, seeded_generator(5, 2))
    c = unit_directions(audit_source, erased_latent, 3, kind, camera, seeded_generator(6, 2))
    assert a.shape == (3, *erased_latent.shape[1:])
    torch.testing.assert_close(a.flatten(1).norm(dim=1), torch.ones(3))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_mapped_directions_point_at_mapped_latents(audit_source, erased_latent):
    """As the adjacency loss: u = (mapping(z) - w) / ||mapping(z) - w||, with psi 1 and the frontal camera."""
    from guide.render import camera_for

    u = unit_directions(audit_source, erased_latent, 2, "mapped", CameraConfig(), seeded_generator(0, 2))
    z = torch.randn(2, audit_source.z_dim, generator=seeded_generator(0, 2))
    with torch.no_grad():
        mapped = audit_source.mapping(z, camera_for(CameraConfig(), 0.0, 0.0).repeat(2, 1), truncation_psi=1.0)
    offsets = mapped - erased_latent
    torch.testing.assert_close(u * offsets.flatten(1).norm(dim=1).reshape(-1, 1, 1), offsets)


@pytest.mark.slow
def test_curve_at_zero_is_the_evaluation_id_and_the_source_curve_falls(tmp_path, audit_source, audit_networks):
    from guide.audit.inputs import open_subject
    from guide.evaluate.identity import Others
    from guide.evaluate.pipeline import EvalNetworks, eval_id

    folder = build_erase_output(tmp_path / "run", audit_source, altered(audit_source, scale=3.0), NUM_VIEWS)
    metrics = eval_id(folder, EvalNetworks(scorer=audit_networks.scorer), others=Others(kind="none"),
                      progress=False)
    subject = open_subject(folder)
    config = AuditConfig(views=NUM_VIEWS, impostors=0, leakage=LeakageConfig(radii=(0.0, 30.0), directions=2))
    record = audit_generators(subject.G_src, subject.G_unl, subject.w_u, camera=subject.run.camera,
                              networks=audit_networks, config=config, w_avg=w_avg_of(subject.G_src)).record
    target = record["leakage"]["target"]
    assert target["unlearned"]["mean"][0] == pytest.approx(metrics["ID"], abs=1e-6)
    assert target["source"]["mean"][0] == pytest.approx(1.0, abs=1e-6)  # the source's own renders
    assert target["source"]["mean"][1] < 0.9  # 30 units away the person is gone (measured ~0.4-0.6)
    assert len(target["unlearned"]["per_direction"][1]) == 2 and target["unlearned"]["std"][0] == 0.0
    assert record["reinversion"] == {"skipped": "no photo"} and record["threshold"] is None
    assert record["leakage"]["retained"]["count"] == 0


@pytest.mark.slow
def test_the_audit_is_a_function_of_its_seed(audit_source, audit_networks, erased_latent):
    unlearned = altered(audit_source, scale=3.0)

    def audit(seed):
        config = AuditConfig(seed=seed, views=1, impostors=3, leakage=LeakageConfig(radii=(0.0, 5.0), directions=1))
        record = audit_generators(audit_source, unlearned, erased_latent, camera=CameraConfig(),
                                  networks=audit_networks, config=config, w_avg=w_avg_of(audit_source)).record
        return {k: record[k] for k in ("threshold", "leakage", "verdicts")}

    first = audit(0)
    assert audit(0) == first
    other = audit(1)
    assert other["threshold"] != first["threshold"]  # other impostors
    assert other["leakage"]["target"]["unlearned"]["mean"][1] != first["leakage"]["target"]["unlearned"]["mean"][1]
    assert other["leakage"]["target"]["unlearned"]["mean"][0] == first["leakage"]["target"]["unlearned"]["mean"][0]
