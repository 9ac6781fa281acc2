"""Small stand-ins for the toolkit's heavy networks, shared by the guide tests."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import eg3d
import guide.checkpoints
from eg3d import configs


class TinyEmbedder(nn.Module):
    """A stand-in identity backbone: 112² images -> unit 512-d embeddings (random weights)."""

    input_size = 112

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.fc = nn.Linear(8 * 27 * 27, 512)

    def forward(self, x):
        y = self.fc(torch.nn.functional.leaky_relu(self.conv(x)).flatten(1))
        return y / y.norm(dim=1, keepdim=True)


@pytest.fixture(scope="session")
def tiny_generator_factory():
    """Build a fresh tiny random generator (same weights for the same seed)."""

    def build(seed: int = 0, nrr: int = 16) -> eg3d.TriPlaneGenerator:
        torch.manual_seed(seed)
        G = eg3d.TriPlaneGenerator(**configs.tiny()).eval().requires_grad_(False)
        G.neural_rendering_resolution = nrr
        return G

    return build


class TinyPerceptual(nn.Module):
    """A stand-in for LPIPS where its value does not matter (the step's structure, speed options):
    per-sample mean squared difference of one frozen random conv layer, [N] like LPIPS."""

    def __init__(self, seed: int = 1):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.requires_grad_(False)

    def forward(self, x, y):
        return (self.conv(x) - self.conv(y)).square().flatten(1).mean(1)


@pytest.fixture(scope="session")
def tiny_lpips():
    with torch.random.fork_rng(devices=[]):
        return TinyPerceptual()


@pytest.fixture(scope="session")
def random_lpips():
    from guide.perceptual import lpips_vgg

    with torch.random.fork_rng(devices=[]):  # same random VGG whatever ran before
        torch.manual_seed(0)
        return lpips_vgg(random_backbone=True)


@pytest.fixture(scope="session")
def tiny_id_loss():
    from guide.identity import IDLoss

    return IDLoss(TinyEmbedder())


@pytest.fixture
def photo_loads(monkeypatch):
    """Counts encoder and detector loads; alignment and encoding are stand-ins that need neither a
    face nor real weights (a photo's latent is the mean latent, nudged)."""
    loads = SimpleNamespace(encoders=0, detectors=0)
    real_require = guide.checkpoints.require_checkpoint

    def require_checkpoint(name, folder):  # a dummy file passes; a missing one keeps the real error
        path = Path(folder) / name
        return path if path.is_file() else real_require(name, folder)

    def load_encoder(path, device="cpu", stochastic=False):
        loads.encoders += 1
        return "encoder"

    class FaceDetector:
        def __init__(self, device="cpu"):
            loads.detectors += 1

    def align_photo(photo, face_index=None, *, detector=None, device="cpu"):
        assert isinstance(detector, FaceDetector)
        return SimpleNamespace(image=photo)

    def invert(crop, encoder, w_avg, device="cpu", seed=None):
        assert encoder == "encoder"
        return w_avg + 0.01

    monkeypatch.setattr(guide.checkpoints, "require_checkpoint", require_checkpoint)
    monkeypatch.setattr("guide.inversion.load_encoder", load_encoder)
    monkeypatch.setattr("guide.identity.detect.FaceDetector", FaceDetector)
    monkeypatch.setattr("guide.preprocess.align_photo", align_photo)
    monkeypatch.setattr("guide.inversion.invert", invert)
    return loads
