"""Cameras for training and evaluation renders (guide.render.camera_for)."""
import copy

import pytest
import torch

import guide.render
from guide.cameras import pose_params
from guide.config import CameraConfig
from tests.guide.trainer_utils import make_trainer


def test_camera_is_drawn_on_the_cpu_and_moved(monkeypatch):
    """The scratch RNG is a CPU generator, so the draw must happen on the CPU: on CUDA a
    CPU generator with device='cuda' raised in every LTUTrainer (2026-12-04, H200)."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return pose_params(*args, **kwargs)

    monkeypatch.setattr(guide.render, "pose_params", spy)
    c = guide.render.camera_for(CameraConfig(), 0.1, device="meta")
    assert c.device.type == "meta" and c.shape == (1, 25)
    (kwargs,) = calls
    gen = kwargs["generator"]
    assert gen.device.type == "cpu" and torch.device(kwargs.get("device", "cpu")).type == "cpu"


def test_camera_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    expected = pose_params(0.1, -0.2, generator=torch.Generator())
    c = guide.render.camera_for(CameraConfig(), 0.1)
    assert torch.equal(c, expected) and torch.equal(torch.get_rng_state(), state)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trainer_steps_on_cuda(tiny_generator_factory, random_lpips, tiny_id_loss):
    """An LTU step on CUDA (the tiny generator): the losses are finite and close to the CPU's
    first step (random rendering differs between devices, so only the deterministic parts
    are compared: the trainer is built and steps without a device mismatch)."""
    trainer = make_trainer(lambda: tiny_generator_factory().cuda(), copy.deepcopy(random_lpips).cuda(),
                           copy.deepcopy(tiny_id_loss).cuda())
    losses = trainer.step()
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert trainer.conditioning.device.type == "cuda"
