"""Helpers of the batch tests: tiny jobs, in-process resources and a stub evaluator."""
import pytest
import torch
import yaml

from guide.batch.resources import Resources
from guide.erase import Networks

FAST = {"iters": 1, "lr": 1e-3, "losses": {"adj_batch": 1, "global_batch": 1, "local_id": 0.0, "adj_id": 0.0},
        "evaluation": {"views": 1}, "checkpoint_every": 1}


def write_job(path, **options):
    """A YAML job file with the fast settings above, overridden by `options`."""
    data = {**FAST, **options}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def tiny_resources(tiny_generator_factory, random_lpips, tiny_id_loss):
    """In-process resources: the tiny generator at 16² neural rendering and the test stand-ins."""

    def build():
        return Resources(tiny_generator_factory(), Networks(random_lpips, tiny_id_loss, note="test stand-ins"))

    return build


@pytest.fixture
def saved_tiny_generator(tiny_generator_factory, tmp_path_factory):
    """The tiny generator saved as our .json/.safetensors pair (for workers that load it)."""
    from guide.io import save_generator

    path = tmp_path_factory.mktemp("generator") / "tiny"
    save_generator(tiny_generator_factory(), path)
    return path.with_suffix(".json")


@pytest.fixture
def latent_file(tiny_generator_factory, tmp_path):
    """A valid latent file [1,14,512] of the tiny generator."""
    G = tiny_generator_factory()
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        w = G.mapping(z, torch.zeros(1, 25))
    path = tmp_path / "good.pt"
    torch.save({"w": w}, path)
    return path


class StubEvaluator:
    """Stands in for guide.evaluate: counts calls, returns fixed numbers."""

    description = "stub evaluator"

    def __init__(self):
        self.identity_calls = []
        self.model_calls = 0

    def identity(self, before, after, retain_pairs):
        self.identity_calls.append((tuple(before.shape), len(retain_pairs)))
        return {"ID": 0.25, "ID_others": 0.9 if retain_pairs else None}

    def model(self, G_src, G, camera):
        self.model_calls += 1
        return {"FID_pre": 1.5, "delta_FID_real": 0.1}


@pytest.fixture
def stub_evaluator():
    return StubEvaluator()
