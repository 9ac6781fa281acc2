"""Stand-ins for the audit tests: a tiny generator whose renders are not saturated, and identity
networks that compare the renders' coarse pixel pattern.

The tiny random generator's images lie mostly outside [-1, 1] (mean about -1.8), so as uint8 --
what the evaluation scores -- they are nearly constant. Scaling its super-resolution ToRGB layers by
0.1 and lifting the last bias by 0.9 (measured: mean 0.02, std 0.09, few clipped pixels) keeps the
renders in range; the change is in the weights both generators share, so an unlearned copy still
differs from its source only in backbone.synthesis.

:class:`PixelEmbedder` stands in for the face networks: the 8x8 average-pooled colour pattern of the
112x112 crop, centred and normalised, so that the cosine of two embeddings is the correlation of
their coarse pixel patterns (measured on this generator: 1 for the same render, 0.08 to 0.97 between
different random identities).
"""
import pytest
import torch
from torch import nn

NUM_VIEWS = 2  # the evaluation renders 11; two keep the tests fast


class PixelEmbedder(nn.Module):
    input_size = 112

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))  # the scorer reads the dtype of a parameter

    def forward(self, x):
        y = nn.functional.adaptive_avg_pool2d(x * self.gain, 8).flatten(1)
        y = y - y.mean(dim=1, keepdim=True)
        return y / y.norm(dim=1, keepdim=True)


class NoFaces:
    """A face detector that never finds one: every image is aligned from the fixed FFHQ landmarks."""

    def __call__(self, image):
        return []


def viewable(G):
    """G with renders inside [-1, 1] (see the module doc); changed in place and returned."""
    with torch.no_grad():
        for name, p in G.superresolution.named_parameters():
            if "torgb" in name and "affine" not in name:
                p.mul_(0.1)
        G.superresolution.block1.torgb.bias.add_(0.9)
    return G


def altered(G, scale: float = 10.0):
    """A copy of G whose synthesis network got strong noise: an 'unlearned' generator (it passes the
    unlearned-copy check) that renders every identity as someone else."""
    from tests.guide.evaluate.conftest import perturbed

    return perturbed(G, scale=scale)


@pytest.fixture(scope="session")
def audit_source(tiny_generator_factory):
    """The viewable tiny source generator (do not modify)."""
    return viewable(tiny_generator_factory(seed=0))


@pytest.fixture(scope="session")
def audit_networks(random_lpips):
    from guide.audit import AuditNetworks
    from guide.evaluate.identity import IdentityScorer
    from guide.identity import IDLoss, IDSimilarity

    scorer = IdentityScorer(IDSimilarity(PixelEmbedder(), detector=NoFaces()), no_face="fixed",
                            note="pixel-pattern stand-in")
    return AuditNetworks(scorer, random_lpips, IDLoss(PixelEmbedder()), "test stand-ins", random_weights=True)


@pytest.fixture(scope="session")
def erased_latent(audit_source):
    from guide.config import CameraConfig
    from guide.render import camera_for

    z = torch.randn(1, audit_source.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return audit_source.mapping(z, camera_for(CameraConfig(), 0.0, 0.0))


def w_avg_of(G):
    return G.backbone.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
