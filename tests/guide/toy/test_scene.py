"""The procedural heads: the z -> p map and the ray-cast renders."""
import torch

from guide.cameras import pose_params
from guide.toy.scene import BACKGROUND, NUM_PARAMS, head_parts, identity_of, render_heads


def test_identity_of_is_fixed_and_spreads_over_the_unit_cube():
    z = torch.randn(4000, 16, generator=torch.Generator().manual_seed(0))
    p = identity_of(z)
    assert p.shape == (4000, NUM_PARAMS) and torch.equal(p, identity_of(z))
    assert bool(((p > 0) & (p < 1)).all())
    # each number is uniform for standard-normal z: mean 1/2, variance 1/12 (sampling error ~0.005)
    assert torch.allclose(p.mean(0), torch.full((NUM_PARAMS,), 0.5), atol=0.03)
    assert torch.allclose(p.var(0), torch.full((NUM_PARAMS,), 1 / 12), atol=0.01)


def test_render_background_head_and_orientation():
    p = identity_of(torch.randn(2, 16, generator=torch.Generator().manual_seed(1)))
    cams = torch.cat([pose_params(0.0, -0.2)] * 2)
    img = render_heads(p, cams, 64)
    assert img.shape == (2, 3, 64, 64) and img.min() >= -1 and img.max() <= 1
    corner = (img[:, :, 0, 0] + 1) / 2
    assert torch.allclose(corner, torch.tensor(BACKGROUND).expand(2, 3), atol=1e-5)
    assert not torch.allclose(img[:, :, 32, 32], img[:, :, 0, 0], atol=0.1)  # the face fills the centre
    # the head is upright: its hair colour appears in the top third, not in the bottom third
    hair = head_parts(p)["hair_colour"][0] * 2 - 1
    near_hair = ((img[0] - hair[:, None, None]).abs().amax(0) < 0.25).float()
    assert near_hair[:21].sum() > 10 * near_hair[43:].sum()
    assert not torch.allclose(img[0], img[1], atol=0.05)  # different people look different


def test_views_differ():
    p = identity_of(torch.randn(1, 16, generator=torch.Generator().manual_seed(2)))
    left, right = (render_heads(p, pose_params(y, -0.2), 64) for y in (-0.26, 0.26))
    assert (left - right).abs().mean() > 0.03  # measured 0.09: the camera really moves
