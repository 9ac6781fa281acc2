"""Fixtures of the preprocessing tests: the shared face photos, one MTCNN detector, single-threaded torch."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ...conftest import _require


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """MTCNN's many small convolutions run ~20x slower when torch threads contend for 2 shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def faces_dir(shared_dir) -> Path:
    """../shared/faces (CelebA-HQ photos, read in place, never copied)."""
    return _require(shared_dir / "faces")


@pytest.fixture(scope="session")
def wild_truth(faces_dir) -> dict:
    """wild.json: for each wild photo its aligned source and the aligned -> canvas 2x3 map."""
    return json.loads((faces_dir / "wild.json").read_text())


@pytest.fixture(scope="session")
def detector():
    """One CPU MTCNN detector shared by every test here."""
    from guide.identity.detect import FaceDetector

    return FaceDetector("cpu")


@pytest.fixture(scope="session")
def aligned_photos(faces_dir):
    """aligned_1..3.jpg as RGB PIL images."""
    from PIL import Image

    return [Image.open(faces_dir / f"aligned_{i}.jpg").convert("RGB") for i in (1, 2, 3)]


@pytest.fixture(scope="session")
def aligned_sets(aligned_photos, detector):
    """Steady landmarks [5, 2] of each aligned photo (the template's raw material)."""
    from guide.preprocess.calibrate import aligned_landmarks

    return [aligned_landmarks(image, detector, f"aligned_{i + 1}") for i, image in enumerate(aligned_photos)]


@pytest.fixture(scope="session")
def wild_results(faces_dir, wild_truth, detector):
    """align_photo of wild_1 and wild_2 with the default template: name -> AlignedPhoto."""
    from guide.preprocess import align_photo

    return {name: align_photo(faces_dir / name, detector=detector) for name in sorted(wild_truth)}
