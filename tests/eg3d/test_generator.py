"""Behaviour of TriPlaneGenerator beyond parity: randomness, gradients, bad input."""
import pytest
import torch

import eg3d
from eg3d import configs
from eg3d.camera import FOV_to_intrinsics, LookAtPoseSampler


def _camera(n: int) -> torch.Tensor:
    c2w = LookAtPoseSampler.sample(1.5707963, 1.5707963, torch.tensor([0, 0, 0.2]), radius=2.7,
                                   generator=torch.Generator().manual_seed(0))
    intr = FOV_to_intrinsics(18.837)
    return torch.cat([c2w.reshape(1, 16), intr.reshape(1, 9)], 1).repeat(n, 1)


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    G = eg3d.TriPlaneGenerator(**configs.tiny()).eval()
    G.neural_rendering_resolution = 16
    return G


def test_output_shapes(G):
    z = torch.randn(2, G.z_dim)
    c = _camera(2)
    with torch.no_grad():
        out = G(z, c, noise_mode="const", deterministic=True)
    assert out["image"].shape == (2, 3, 128, 128)
    assert out["image_raw"].shape == (2, 3, 16, 16)
    assert out["image_depth"].shape == (2, 1, 16, 16)
    assert all(torch.isfinite(t).all() for t in out.values())


def test_deterministic_and_random_modes(G):
    ws = G.mapping(torch.randn(1, G.z_dim), _camera(1))
    c = _camera(1)
    with torch.no_grad():
        a = G.synthesis(ws, c, noise_mode="const", deterministic=True)["image"]
        b = G.synthesis(ws, c, noise_mode="const", deterministic=True)["image"]
        assert torch.equal(a, b)
        r1 = G.synthesis(ws, c, generator=torch.Generator().manual_seed(5))["image"]
        r2 = G.synthesis(ws, c, generator=torch.Generator().manual_seed(5))["image"]
        r3 = G.synthesis(ws, c, generator=torch.Generator().manual_seed(6))["image"]
    assert torch.equal(r1, r2)
    assert not torch.equal(r1, r3)
    assert not torch.equal(r1, a)


def test_neural_rendering_resolution_is_sticky(G):
    ws = G.mapping(torch.randn(1, G.z_dim), _camera(1))
    with torch.no_grad():
        out = G.synthesis(ws, _camera(1), neural_rendering_resolution=8, noise_mode="const", deterministic=True)
    assert out["image_raw"].shape[-1] == 8 and G.neural_rendering_resolution == 8
    G.neural_rendering_resolution = 16


def test_gradients_reach_backbone_synthesis(G):
    G = G.train()
    try:
        for p in G.parameters():
            p.requires_grad_(False)
        trainable = list(G.backbone.synthesis.parameters())
        for p in trainable:
            p.requires_grad_(True)
            p.grad = None
        ws = G.mapping(torch.randn(2, G.z_dim), _camera(2)).detach()
        out = G.synthesis(ws, _camera(2), noise_mode="const", deterministic=True)
        loss = out["image"].square().mean() + out["image_raw"].square().mean()
        loss.backward()
        grads = [p.grad for p in trainable]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(int(g.abs().sum() > 0) for g in grads) >= len(grads) - 3  # noise strengths may be 0
        assert all(p.grad is None for p in G.superresolution.parameters())
    finally:
        G.eval()


def test_bad_inputs(G):
    ws = G.mapping(torch.randn(2, G.z_dim), _camera(2))
    with pytest.raises(ValueError, match="camera parameters"):
        G.synthesis(ws, torch.zeros(2, 16))
    with pytest.raises(ValueError, match="batch sizes"):
        G.synthesis(ws, _camera(3))
    with pytest.raises(ValueError, match="batch sizes"):
        G.mapping(torch.randn(2, G.z_dim), _camera(1))
    with pytest.raises(ValueError, match=r"ws must be"):
        G.synthesis(ws[:, :5], _camera(2))
    kwargs = configs.tiny()
    kwargs["rendering_kwargs"]["superresolution_module"] = "training.superresolution.Nope"
    with pytest.raises(ValueError, match="unknown super-resolution module"):
        eg3d.TriPlaneGenerator(**kwargs)


@pytest.mark.parametrize("name", ["SuperresolutionHybrid2X", "training.superresolution.SuperresolutionHybrid2X"])
def test_superresolution_by_short_or_dotted_name(name):
    kwargs = configs.tiny()
    kwargs["rendering_kwargs"]["superresolution_module"] = name
    G = eg3d.TriPlaneGenerator(**kwargs)
    assert type(G.superresolution).__name__ == "SuperresolutionHybrid2X"


def test_full_size_config_matches_released_layout():
    with torch.device("meta"):
        G = eg3d.TriPlaneGenerator(**configs.ffhq_rebalanced_512_128())
    assert sum(p.numel() for p in G.parameters()) == 30662136


def test_init_kwargs_rebuild_the_same_architecture():
    kwargs = configs.tiny()
    G = eg3d.TriPlaneGenerator(**kwargs)
    assert G.init_args == ()
    assert G.init_kwargs == kwargs
    kwargs["rendering_kwargs"]["box_warp"] = 99  # a copy, not a reference
    assert G.init_kwargs["rendering_kwargs"]["box_warp"] == 1
    G2 = eg3d.TriPlaneGenerator(*G.init_args, **G.init_kwargs)
    assert list(G2.state_dict()) == list(G.state_dict())


def test_plane_resolution_option():
    """Smaller tri-planes (the toy world's 64²): recorded only when not the official 256, bounded."""
    from eg3d.bounds import GeneratorConfigError, check_generator_config

    assert "plane_resolution" not in eg3d.TriPlaneGenerator(**configs.tiny()).init_kwargs
    torch.manual_seed(0)
    G = eg3d.TriPlaneGenerator(**configs.tiny(), plane_resolution=64)
    assert G.init_kwargs["plane_resolution"] == 64 and G.num_ws == 10
    ws = torch.randn(1, G.num_ws, G.w_dim)
    assert G.get_planes(ws, noise_mode="const").shape == (1, 3, 32, 64, 64)
    check_generator_config((), G.init_kwargs)
    with pytest.raises(GeneratorConfigError, match="plane_resolution"):
        check_generator_config((), {**G.init_kwargs, "plane_resolution": 100})
