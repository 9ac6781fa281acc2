"""Fixtures for the weight-file tests: the tiny EG3D snapshot (read in place) and generators."""
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_pkl(eg3d_fixtures) -> Path:
    """../shared/fixtures/eg3d/tiny_G.pkl, read in place (never copied)."""
    return eg3d_fixtures / "tiny_G.pkl"


@pytest.fixture(scope="session")
def pkl_generator(tiny_pkl):
    """G_ema of tiny_G.pkl as our TriPlaneGenerator (shared: do not modify)."""
    import eg3d

    return eg3d.load_network_pkl(tiny_pkl)["G_ema"]


@pytest.fixture()
def random_generator():
    """A tiny generator with random init (eg3d.configs.tiny())."""
    import eg3d
    from eg3d import configs

    torch.manual_seed(123)
    G = eg3d.TriPlaneGenerator(**configs.tiny())
    with torch.no_grad():  # make buffers non-trivial too
        for t in G.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=torch.Generator().manual_seed(t.numel())) * 0.01)
    G.neural_rendering_resolution = 32
    return G


def assert_state_dicts_identical(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert sa[key].shape == sb[key].shape, key
        assert torch.equal(sa[key], sb[key]), key
