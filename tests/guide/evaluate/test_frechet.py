"""Fréchet distance against closed forms, ΔFID arithmetic, and reading real statistics."""
import numpy as np
import pytest

from guide.errors import GuideError
from guide.evaluate.fid import fid_scores
from guide.evaluate.frechet import (Statistics, StatisticsError, delta_fid, fid_from_features, frechet_distance,
                                    load_real_statistics, statistics_of)


def closed_form(mu1, var1, mu2, var2):
    """FID of N(mu1, diag(var1)) and N(mu2, diag(var2))."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2)))


def features_with(mu, var):
    """2D samples whose np.mean / np.cov are exactly mu / diag(var): mu ± a_i e_i."""
    d = mu.shape[0]
    n = 2 * d
    a = np.sqrt(var * (n - 1) / 2.0)
    feats = np.repeat(mu[None, :], n, axis=0)
    feats[np.arange(d), np.arange(d)] += a
    feats[d + np.arange(d), np.arange(d)] -= a
    return feats


def gaussian(rng, d):
    return rng.normal(size=d), rng.uniform(0.2, 3.0, size=d)


def test_diagonal_gaussians_match_closed_form():
    rng = np.random.default_rng(0)
    for d in (2, 5, 64):  # SciPy 1.17 sqrtm(disp=False) on 1x1 returns no error estimate
        (mu1, v1), (mu2, v2) = gaussian(rng, d), gaussian(rng, d)
        got = frechet_distance(Statistics(mu1, np.diag(v1)), Statistics(mu2, np.diag(v2)))
        assert got == pytest.approx(closed_form(mu1, v1, mu2, v2), rel=1e-9, abs=1e-9)


def test_distance_to_itself_is_zero_and_shift_adds_squared_norm():
    rng = np.random.default_rng(1)
    mu, v = gaussian(rng, 16)
    a = Statistics(mu, np.diag(v))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shift = rng.normal(size=16)
    assert frechet_distance(a, Statistics(mu + shift, np.diag(v))) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_full_covariance_rotation_invariance():
    """Rotating both Gaussians by the same orthogonal matrix keeps the closed-form value."""
    rng = np.random.default_rng(2)
    d = 8
    (mu1, v1), (mu2, v2) = gaussian(rng, d), gaussian(rng, d)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    rotated = frechet_distance(Statistics(q @ mu1, q @ np.diag(v1) @ q.T), Statistics(q @ mu2, q @ np.diag(v2) @ q.T))
    assert rotated == pytest.approx(closed_form(mu1, v1, mu2, v2), rel=1e-7)


def test_statistics_of_features_are_exact_for_the_constructed_samples():
    rng = np.random.default_rng(3)
    mu, v = gaussian(rng, 6)
    stats = statistics_of(features_with(mu, v))
    np.testing.assert_allclose(stats.mu, mu, atol=1e-12)
    np.testing.assert_allclose(stats.sigma, np.diag(v), atol=1e-12)


def test_sampled_gaussians_approach_closed_form():
    rng = np.random.default_rng(4)
    d = 4
    (mu1, v1), (mu2, v2) = gaussian(rng, d), gaussian(rng, d)
    x = rng.normal(size=(200_000, d)) * np.sqrt(v1) + mu1
    y = rng.normal(size=(200_000, d)) * np.sqrt(v2) + mu2
    assert fid_from_features(x, y) == pytest.approx(closed_form(mu1, v1, mu2, v2), rel=0.02)


def test_delta_fid_arithmetic():
    """FID_pre, FID(real, ·) and ΔFID_real = FID(real, unlearned) - FID(real, pretrained)."""
    rng = np.random.default_rng(5)
    d = 10
    (mu_r, v_r), (mu_p, v_p), (mu_u, v_u) = gaussian(rng, d), gaussian(rng, d), gaussian(rng, d)
    real = Statistics(mu_r, np.diag(v_r))
    scores = fid_scores(features_with(mu_p, v_p), features_with(mu_u, v_u), real)
    pre = closed_form(mu_r, v_r, mu_p, v_p)
    unl = closed_form(mu_r, v_r, mu_u, v_u)
    assert scores["FID_pre"] == pytest.approx(closed_form(mu_p, v_p, mu_u, v_u), rel=1e-8)
    assert scores["FID_real_pretrained"] == pytest.approx(pre, rel=1e-8)
    assert scores["FID_real_unlearned"] == pytest.approx(unl, rel=1e-8)
    assert scores["delta_FID_real"] == pytest.approx(unl - pre, rel=1e-8, abs=1e-9)
    assert delta_fid(unl, pre) == pytest.approx(unl - pre)
    assert fid_scores(features_with(mu_p, v_p), features_with(mu_u, v_u))["delta_FID_real"] is None


def test_dimension_mismatch_is_one_line_error():
    a = Statistics(np.zeros(4), np.eye(4))
    b = Statistics(np.zeros(5), np.eye(5))
    with pytest.raises(StatisticsError, match="dimensions differ"):
        frechet_distance(a, b)
    with pytest.raises(StatisticsError):
        statistics_of(np.zeros((1, 4)))


# ------------------------------------------------------------------------ real statistics


def test_real_statistics_from_npy_and_npz(tmp_path):
    feats = np.random.default_rng(6).normal(size=(30, 2048)).astype(np.float32)
    np.save(tmp_path / "feats.npy", feats)
    from_npy = load_real_statistics(tmp_path / "feats.npy")
    assert from_npy.count == 30 and from_npy.dim == 2048
    np.savez(tmp_path / "stats.npz", mu=from_npy.mu, sigma=from_npy.sigma)
    from_npz = load_real_statistics(tmp_path / "stats.npz")
    np.testing.assert_array_equal(from_npz.mu, from_npy.mu)
    np.testing.assert_array_equal(from_npz.sigma, from_npy.sigma)


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("npy_wrong_dim", "2048"),
    ("npy_1d", "2048"),
    ("npz_no_keys", "no 'mu' and 'sigma'"),
    ("npz_wrong_dim", "2048"),
    ("garbage", "cannot read"),
])
def test_bad_real_statistics(tmp_path, content, message):
    path = tmp_path / ("real.npz" if content and content.startswith("npz") else "real.npy")
    if content == "npy_wrong_dim":
        np.save(path, np.zeros((10, 100), np.float32))
    elif content == "npy_1d":
        np.save(path, np.zeros(2048, np.float32))
    elif content == "npz_no_keys":
        np.savez(path, mean=np.zeros(2048))
    elif content == "npz_wrong_dim":
        np.savez(path, mu=np.zeros(64), sigma=np.eye(64))
    elif content == "garbage":
        path.write_bytes(b"not numpy at all")
    with pytest.raises(GuideError, match=message) as info:
        load_real_statistics(path)
    assert "\n" not in info.value.one_line()
