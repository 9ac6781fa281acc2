"""eg3d.camera against the upstream camera_utils outputs stored in camera.pt.

Tolerance: exact. The helpers run the same float32 operations in the same order as
upstream, so every stored tensor is reproduced bit for bit on CPU (signed zeros included);
the fixtures were produced on CPU float32 as well.
"""
import math

import pytest
import torch

from tests.eg3d.parity_utils import assert_bitwise

from eg3d.camera import (
    FOV_to_intrinsics,
    GaussianCameraPoseSampler,
    LookAtPoseSampler,
    UniformCameraPoseSampler,
    camera_params,
    create_cam2world_matrix,
    normalize_vecs,
)


def test_lookat_cases(cam):
    assert len(cam["lookat_cases"]) == 12
    for case in cam["lookat_cases"]:
        out = LookAtPoseSampler.sample(
            case["horizontal_mean"],
            case["vertical_mean"],
            torch.tensor(case["lookat_position"]),
            horizontal_stddev=case["horizontal_stddev"],
            vertical_stddev=case["vertical_stddev"],
            radius=case["radius"],
        )
        assert_bitwise(out, case["cam2world"])


def test_lookat_accepts_lists_and_int_tensors(cam):
    case = cam["lookat_cases"][0]  # pivot [0, 0, 0]
    for pivot in ([0, 0, 0], (0.0, 0.0, 0.0), torch.tensor([0, 0, 0])):
        out = LookAtPoseSampler.sample(case["horizontal_mean"], case["vertical_mean"], pivot, radius=case["radius"])
        assert_bitwise(out, case["cam2world"])


def test_lookat_batch3(cam):
    b = cam["lookat_batch3"]
    out = LookAtPoseSampler.sample(
        b["horizontal_mean"], b["vertical_mean"], b["lookat_position"], radius=b["radius"], batch_size=b["batch_size"]
    )
    assert_bitwise(out, b["cam2world"])


def test_gaussian_sampler_cases(cam):
    for case in cam["gaussian_sampler_cases"]:
        out = GaussianCameraPoseSampler.sample(case["horizontal_mean"], case["vertical_mean"], radius=case["radius"])
        assert_bitwise(out, case["cam2world"])


def test_create_cam2world_matrix(cam):
    c = cam["create_cam2world_matrix"]
    assert_bitwise(create_cam2world_matrix(c["forward_vector"], c["origin"]), c["cam2world"])


def test_fov_to_intrinsics(cam):
    assert [c["fov_degrees"] for c in cam["fov_to_intrinsics"]] == [12.0, 16.5, 18.837, 20.0, 30.0, 45.0]
    for case in cam["fov_to_intrinsics"]:
        assert_bitwise(FOV_to_intrinsics(case["fov_degrees"]), case["intrinsics"])
    assert FOV_to_intrinsics(18.837)[0, 0].item() == pytest.approx(4.263391, abs=1e-6)


def test_guide_convention(cam):
    g = cam["guide"]
    k = FOV_to_intrinsics(g["fov_degrees"])
    assert_bitwise(k, g["intrinsics"])
    pivot, r = g["cam_pivot"], g["cam_radius"]
    cond = LookAtPoseSampler.sample(math.pi / 2, math.pi / 2, pivot, radius=r)
    assert_bitwise(cond, g["conditioning_cam2world"])
    assert_bitwise(camera_params(cond, k), g["conditioning_params"])
    front = LookAtPoseSampler.sample(math.pi / 2, math.pi / 2 - 0.2, pivot, radius=r)
    assert_bitwise(front, g["front_cam2world"])
    assert_bitwise(camera_params(front, k), g["camera_params_front"])
    views = [
        LookAtPoseSampler.sample(math.pi / 2 + a, math.pi / 2 + g["angle_p"], pivot, radius=r) for a in g["view_angles_y"]
    ]
    assert_bitwise(torch.cat(views), g["view_cam2world"])
    assert_bitwise(camera_params(torch.cat(views), k), g["view_camera_params"])


def test_eg3d_gen_samples_convention(cam):
    e = cam["eg3d_gen_samples_ffhq"]
    k = FOV_to_intrinsics(e["fov_degrees"])
    pivot, r = e["cam_pivot"], e["cam_radius"]
    cond = LookAtPoseSampler.sample(math.pi / 2, math.pi / 2, pivot, radius=r)
    assert_bitwise(camera_params(cond, k), e["conditioning_params"])
    views = [LookAtPoseSampler.sample(math.pi / 2 + y, math.pi / 2 + p, pivot, radius=r) for y, p in e["view_angles"]]
    assert_bitwise(camera_params(torch.cat(views), k), e["view_camera_params"])


def test_default_rng_consumption_matches_upstream():
    """Upstream draws two randn((batch, 1)) from the global RNG even with zero stddev."""
    torch.manual_seed(123)
    LookAtPoseSampler.sample(1.0, 1.2, [0, 0, 0], batch_size=4)
    after = torch.randn(5)
    torch.manual_seed(123)
    torch.randn((4, 1)), torch.randn((4, 1))
    assert torch.equal(after, torch.randn(5))


def test_generator_leaves_global_rng_alone_and_is_reproducible():
    torch.manual_seed(7)
    expected = torch.randn(3)
    torch.manual_seed(7)
    kw = dict(horizontal_stddev=0.3, vertical_stddev=0.2, radius=2.7, batch_size=5)
    a = LookAtPoseSampler.sample(1.5, 1.5, [0, 0, 0.2], generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(torch.randn(3), expected)
    b = LookAtPoseSampler.sample(1.5, 1.5, [0, 0, 0.2], generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_generator_stddev_matches_explicit_draws():
    gen = torch.Generator().manual_seed(3)
    out = GaussianCameraPoseSampler.sample(1.4, 1.6, 0.3, 0.1, radius=2.0, batch_size=2, generator=gen)
    gen = torch.Generator().manual_seed(3)
    h = torch.randn((2, 1), generator=gen) * 0.3 + 1.4
    v = torch.randn((2, 1), generator=gen) * 0.1 + 1.6
    for i in range(2):
        ref = GaussianCameraPoseSampler.sample(h[i].item(), v[i].item(), radius=2.0)
        torch.testing.assert_close(out[i : i + 1], ref, rtol=0, atol=1e-6)


def test_uniform_sampler():
    fixed = UniformCameraPoseSampler.sample(1.3, 1.7, radius=2.0)
    assert torch.equal(fixed, GaussianCameraPoseSampler.sample(1.3, 1.7, radius=2.0))
    out = UniformCameraPoseSampler.sample(
        math.pi / 2, math.pi / 2, math.pi / 4, 0, radius=1, batch_size=64, generator=torch.Generator().manual_seed(0)
    )
    origins = out[:, :3, 3]
    torch.testing.assert_close(origins.norm(dim=-1), torch.ones(64))
    yaw_from_z = torch.atan2(origins[:, 0], origins[:, 2]).abs()  # 0 at the frontal pose
    assert yaw_from_z.max() <= math.pi / 4 + 1e-5 and yaw_from_z.max() > math.pi / 8


def test_pose_geometry():
    """A camera at (0, 0, r) looking at the origin: forward -z, right +x... in OpenCV axes."""
    c2w = LookAtPoseSampler.sample(math.pi / 2, math.pi / 2, [0, 0, 0], radius=2.7)[0]
    torch.testing.assert_close(c2w[:3, 3], torch.tensor([0.0, 0.0, 2.7]))
    torch.testing.assert_close(c2w[:3, 2], torch.tensor([0.0, 0.0, -1.0]))  # forward
    torch.testing.assert_close(c2w[:3, 1], torch.tensor([0.0, -1.0, 0.0]))  # image down = world -y
    torch.testing.assert_close(c2w[:3, :3] @ c2w[:3, :3].T, torch.eye(3))
    torch.testing.assert_close(normalize_vecs(torch.tensor([[3.0, 4.0, 0.0]])), torch.tensor([[0.6, 0.8, 0.0]]))


def test_camera_params_shapes():
    c2w = LookAtPoseSampler.sample(1.0, 1.5, [0, 0, 0], batch_size=3)
    k = FOV_to_intrinsics(18.837)
    out = camera_params(c2w, k)
    assert out.shape == (3, 25)
    assert torch.equal(out[:, :16], c2w.reshape(3, 16)) and torch.equal(out[1, 16:], k.reshape(9))
    assert torch.equal(camera_params(c2w, k.expand(3, 3, 3)), out)


@pytest.mark.parametrize(
    "c2w, k, word",
    [
        (torch.eye(4), torch.eye(3), "cam2world"),
        (torch.eye(4).expand(2, 4, 4), torch.eye(4), "intrinsics"),
        (torch.eye(4).expand(2, 4, 4), torch.eye(3).expand(3, 3, 3), "batch"),
        ([[1.0]], torch.eye(3), "cam2world"),
    ],
)
def test_camera_params_errors(c2w, k, word):
    with pytest.raises(ValueError, match=word):
        camera_params(c2w, k)
