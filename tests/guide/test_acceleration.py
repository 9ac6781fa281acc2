"""The opt-in speed settings (channels_last, torch.compile) leave the LTU step's numbers unchanged.

Both runs start from identical weights, RNG seeds and loss networks, so the first step's losses
differ only by floating-point reordering: rel 1e-5 (measured ~1e-7). After one Adam update the
weights may differ where a gradient is pure rounding noise (Adam moves those by up to lr), so the
second step's losses get rel 1e-3.
"""
import copy

import pytest
import torch

from guide.acceleration import compile_generator, to_channels_last
from tests.guide.trainer_utils import make_trainer


def _losses(factory, lpips, id_loss, steps=2, **options):
    trainer = make_trainer(factory, copy.deepcopy(lpips), copy.deepcopy(id_loss), seed=3, **options)
    return trainer, [trainer.step() for _ in range(steps)]


def _assert_same_losses(a, b):
    assert a[0].keys() == b[0].keys()
    for name in a[0]:
        assert b[0][name] == pytest.approx(a[0][name], rel=1e-5, abs=1e-7), name
        assert b[1][name] == pytest.approx(a[1][name], rel=1e-3, abs=1e-6), name


def test_channels_last_keeps_losses(tiny_generator_factory, random_lpips, tiny_id_loss):
    _, plain = _losses(tiny_generator_factory, random_lpips, tiny_id_loss)
    trainer, fast = _losses(tiny_generator_factory, random_lpips, tiny_id_loss, channels_last=True)
    weight = next(p for p in trainer.G.superresolution.parameters() if p.ndim == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    _assert_same_losses(plain, fast)


@pytest.mark.slow
def test_compile_keeps_losses(tiny_generator_factory, random_lpips, tiny_id_loss):
    _, plain = _losses(tiny_generator_factory, random_lpips, tiny_id_loss)
    trainer, fast = _losses(tiny_generator_factory, random_lpips, tiny_id_loss, compile=True)
    assert trainer.G.renderer._compiled_call_impl is not None
    _assert_same_losses(plain, fast)
    # Compiling changes no state_dict key (checkpoints stay loadable by everyone).
    assert list(trainer.G.state_dict()) == list(tiny_generator_factory().state_dict())


def test_to_channels_last_skips_none():
    conv = torch.nn.Conv2d(3, 4, 3)
    to_channels_last(None, conv)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_compile_generator_is_in_place(tiny_generator_factory):
    G = tiny_generator_factory()
    assert compile_generator(G) is G
    assert G.backbone.synthesis._compiled_call_impl is not None


def test_fused_adam_matches_the_default_adam_within_rounding():
    """Fused Adam (one kernel) against torch's default Adam on the same parameters and gradients
    (lr 1e-4 as LTU, 50 steps, parameters ~N(0,1)). Measured on CPU (torch 2.14): the parameters
    move by up to 2.7e-3 and the two differ by at most 7.5e-9 (float32 rounding of the update);
    asserted: the difference stays below 1e-3 of the movement (an error in the update itself
    would be of the order of the movement)."""
    from guide.trainer import make_adam

    g = torch.Generator().manual_seed(0)
    plain = [torch.randn(1000, generator=g) for _ in range(3)]
    fused = [p.clone() for p in plain]
    for p in plain + fused:
        p.requires_grad_(True)
    opt_plain, opt_fused = make_adam(plain, 1e-4), make_adam(fused, 1e-4, fused=True)
    start = [p.detach().clone() for p in plain]
    for _ in range(50):
        for p, q in zip(plain, fused):
            p.grad = torch.randn(1000, generator=g)
            q.grad = p.grad.clone()
        opt_plain.step()
        opt_fused.step()
    moved = max((p - s).abs().max().item() for p, s in zip(plain, start))
    gap = max((p - q).abs().max().item() for p, q in zip(plain, fused))
    assert moved > 1e-3 and gap < 1e-3 * moved, (moved, gap)


def test_channels_last_reaches_the_backbone_and_keeps_the_render(tiny_generator_factory):
    """The whole generator, backbone included, runs on NHWC features: same image within float32
    rounding (measured on CPU: max abs difference 6.9e-6 on images in [-1, 1]; asserted 1e-4)."""
    from eg3d.synthesis import SynthesisBlock

    from guide.config import CameraConfig
    from guide.render import camera_for

    G = tiny_generator_factory()
    c = camera_for(CameraConfig()).repeat(2, 1)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)), c)
    kw = dict(noise_mode="const", deterministic=True)
    with torch.no_grad():
        plain = G.synthesis(ws, c, **kw)["image"]
        to_channels_last(G)
        fast = G.synthesis(ws, c, **kw)["image"]
    blocks = [m for m in G.modules() if isinstance(m, SynthesisBlock)]
    assert blocks and all(b.memory_format is torch.channels_last for b in blocks)
    weights = [p for p in G.backbone.synthesis.parameters() if p.ndim == 4]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert (fast - plain).abs().max().item() < 1e-4


@pytest.mark.slow
def test_compiled_step_is_one_graph_per_module_without_breaks(tiny_generator_factory, tiny_lpips, monkeypatch):
    """torch.compile recompiled the step on an H200 for minutes (docs/performance.md): every random
    draw from a torch.Generator broke the graphs. Now the first step (which records the draws) runs
    eagerly, later steps replay pre-drawn numbers: 6 graphs (synthesis, renderer, super-resolution
    of G and G_src), no graph break, nothing compiled again in the third step. Traced with the
    'eager' backend (no code generation): what is counted is dynamo's work, which fails the same."""
    from torch._dynamo.utils import counters

    import guide.trainer

    torch._dynamo.reset()
    counters.clear()
    monkeypatch.setattr(guide.trainer, "compile_generator", lambda G: compile_generator(G, backend="eager"))
    trainer = make_trainer(tiny_generator_factory, tiny_lpips, None, compile=True)
    trainer.step()
    assert counters["stats"]["unique_graphs"] == 0  # the recording step ran eagerly
    trainer.step()
    graphs = counters["stats"]["unique_graphs"]
    trainer.step()
    assert graphs == 6 and counters["stats"]["unique_graphs"] == 6
    assert not counters["graph_break"] and not counters["recompiles"]
