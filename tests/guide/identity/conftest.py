"""Fixtures for the identity-network tests: ../shared/fixtures/idnets and seed-0 filled networks."""
from pathlib import Path

import pytest

from tests.conftest import _require


@pytest.fixture(scope="session")
def idnets_fixtures(shared_dir) -> Path:
    """../shared/fixtures/idnets."""
    return _require(shared_dir / "fixtures" / "idnets")


@pytest.fixture(scope="session")
def faces_dir(shared_dir) -> Path:
    """../shared/faces (real photos, read in place)."""
    return _require(shared_dir / "faces")


@pytest.fixture(scope="session")
def ir_se50_seed0(fill_module):
    """IR-SE50 filled with deterministic_fill(seed 0), eval mode (as the fixtures were made)."""
    from guide.identity import ir_se50

    return fill_module(ir_se50(), 0).eval()


@pytest.fixture(scope="session")
def ir101_seed0(fill_module):
    """IR-101 filled with deterministic_fill(seed 0), eval mode."""
    from guide.identity import ir101

    return fill_module(ir101(), 0).eval()


@pytest.fixture(scope="session")
def face_detector():
    """One MTCNN detector on CPU, shared by the detection tests."""
    from guide.identity import FaceDetector

    return FaceDetector("cpu")

