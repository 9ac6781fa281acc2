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
