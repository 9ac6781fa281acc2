"""Gaussian statistics of Inception features and the Fréchet distance between them.

``FID(a, b) = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` is computed by
pytorch-fid's :func:`pytorch_fid.fid_score.calculate_frechet_distance` (the function the
reference calls through its own copy). Means and covariances are float64 ``np.mean`` /
``np.cov(rowvar=False)`` of the features, as in pytorch-fid and the reference.

Real statistics come from a file the user supplies (:func:`load_real_statistics`):

* ``.npy``: features ``[M, D]`` (what the reference ships as ``ffhq_real_feat.npy``), or
* ``.npz`` with ``mu`` ``[D]`` and ``sigma`` ``[D, D]`` (pytorch-fid's ``--save-stats`` format).
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from guide.errors import GuideError

FEATURE_DIM = 2048  # pytorch-fid's final average-pool features


class StatisticsError(GuideError):
    """Statistics or features that cannot be used (missing, unreadable, wrong shape)."""


@dataclass(frozen=True)
class Statistics:
    """Mean ``mu`` [D] and covariance ``sigma`` [D, D] of ``count`` feature vectors (None if unknown)."""

    mu: np.ndarray
    sigma: np.ndarray
    count: Optional[int] = None

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])


def statistics_of(features: np.ndarray, what: str = "features") -> Statistics:
    """Float64 mean and covariance (``rowvar=False``) of features ``[N, D]``; needs N >= 2."""
    feats = np.asarray(features)
    if feats.ndim != 2:
        raise StatisticsError(f"{what}: expected features [N, D], got shape {feats.shape}")
    if feats.shape[0] < 2:
        raise StatisticsError(f"{what}: at least 2 feature vectors are needed for a covariance, got {feats.shape[0]}")
    feats = feats.astype(np.float64)
    return Statistics(np.mean(feats, axis=0), np.cov(feats, rowvar=False), int(feats.shape[0]))


def _check_pair(a: Statistics, b: Statistics, names: tuple) -> None:
    if a.mu.shape != b.mu.shape or a.sigma.shape != b.sigma.shape:
        raise StatisticsError(
            f"feature dimensions differ: {names[0]} has {a.dim}-d features, {names[1]} has {b.dim}-d "
            f"(FID needs the same Inception layer on both sides; the pool features are {FEATURE_DIM}-d)")


def _pytorch_fid_distance(mu1, sigma1, mu2, sigma2) -> float:
    from pytorch_fid.fid_score import calculate_frechet_distance

    # pytorch-fid prints a notice when the product is singular; keep stdout for results
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.filterwarnings("ignore", message=".*disp.*", category=DeprecationWarning)
        # N < D samples give a singular covariance; the report warns about small N instead
        warnings.filterwarnings("ignore", message=".*[Ss]ingular.*")
        return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


def frechet_distance(a: Statistics, b: Statistics, names: tuple = ("first", "second")) -> float:
    """FID between two Gaussians (pytorch-fid's implementation); one-line errors on bad input."""
    _check_pair(a, b, names)
    try:
        value = _pytorch_fid_distance(a.mu, a.sigma, b.mu, b.sigma)
    except TypeError as exc:  # a SciPy without sqrtm(disp=...) under an old pytorch-fid
        raise StatisticsError(
            f"pytorch-fid cannot run with this SciPy ({exc}); install a matching pytorch-fid") from None
    except ValueError as exc:  # pytorch-fid: large imaginary component in the matrix square root
        raise StatisticsError(
            f"Fréchet distance between {names[0]} and {names[1]} failed ({exc}); use more samples") from None
    if not np.isfinite(value):
        raise StatisticsError(f"Fréchet distance between {names[0]} and {names[1]} is not finite; use more samples")
    return value


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray, names: tuple = ("first", "second")) -> float:
    """FID between two feature sets ``[N, D]`` and ``[M, D]``."""
    return frechet_distance(statistics_of(features_a, names[0]), statistics_of(features_b, names[1]), names)


def delta_fid(fid_real_unlearned: float, fid_real_pretrained: float) -> float:
    """ΔFID_real = FID(real, unlearned) − FID(real, pretrained): how much farther from real data."""
    return float(fid_real_unlearned) - float(fid_real_pretrained)


# --------------------------------------------------------------------------- real statistics


def load_real_statistics(path: Union[str, Path], dim: int = FEATURE_DIM) -> Statistics:
    """Real-data statistics from ``.npy`` features ``[M, dim]`` or an ``.npz`` with ``mu``/``sigma``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise StatisticsError(
            f"real statistics file {path} not found (pass --real with Inception features [M,{dim}] .npy, "
            f"e.g. the reference's ffhq_real_feat.npy, or a .npz with mu/sigma)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise StatisticsError(f"cannot read real statistics {path}: {type(exc).__name__}: {exc}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if "mu" not in data.files or "sigma" not in data.files:
                found = ", ".join(data.files) or "none"
                raise StatisticsError(f"{path} has no 'mu' and 'sigma' arrays (found: {found})")
            mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
        if mu.shape != (dim,) or sigma.shape != (dim, dim):
            raise StatisticsError(
                f"{path}: mu {mu.shape} / sigma {sigma.shape} do not match the {dim}-d Inception pool features "
                f"(expected ({dim},) and ({dim}, {dim}))")
        return Statistics(mu, sigma, None)
    feats = np.asarray(data)
    if feats.ndim != 2 or feats.shape[1] != dim:
        raise StatisticsError(
            f"{path}: features of shape {feats.shape} do not match the {dim}-d Inception pool features "
            f"(expected [M, {dim}])")
    return statistics_of(feats, str(path))
