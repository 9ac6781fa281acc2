"""Shared test fixtures: where ../shared lives and how tests skip without it."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_configure(config):
    """Under pytest-xdist (pytest.ini runs one worker per core) each worker gets its share of the
    cores for torch's intra-op threads, so the workers do not oversubscribe the machine."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _require(path: Path) -> Path:
    if path.exists():
        return path
    msg = f"reference data {path} is absent (tests read ../shared in place)"
    if os.environ.get("CI"):
        pytest.fail(msg + " -- CI must run these tests, not skip them")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder beside the checkout."""
    return _require(SHARED)


@pytest.fixture(scope="session")
def eg3d_fixtures(shared_dir) -> Path:
    """../shared/fixtures/eg3d."""
    return _require(shared_dir / "fixtures" / "eg3d")


@pytest.fixture(scope="session")
def fill_module(shared_dir):
    """`fill_module` from ../shared/parity/fill.py, imported in place."""
    import importlib.util

    path = _require(shared_dir / "parity" / "fill.py")
    spec = importlib.util.spec_from_file_location("shared_parity_fill", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.fill_module


@pytest.fixture(scope="session")
def cam(eg3d_fixtures):
    """../shared/fixtures/eg3d/camera.pt (camera helper reference outputs)."""
    import torch

    return torch.load(eg3d_fixtures / "camera.pt", weights_only=True)



@pytest.fixture(scope="session")
def toy():
    """The shipped toy world (guide.toy), loaded once per test process."""
    from guide.toy.world import toy_world

    return toy_world("cpu")


@pytest.fixture(scope="session")
def toy_guide_erase(toy):
    """One GUIDE erase of the demo's toy identity (seed 3) with the toy preset (about 40 s on 2 cores)."""
    from guide.toy.effect import erase_toy
    from guide.commands.demo import DEMO_IDENTITY

    return erase_toy(toy, "guide", DEMO_IDENTITY)
