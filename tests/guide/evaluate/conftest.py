"""Fixtures for the evaluation tests: a `guide erase`-style output folder built from tiny generators."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

NUM_VIEWS = 3  # the real erase writes 11; fewer keeps the tests fast


def perturbed(G, scale: float = 0.05, seed: int = 1):
    """A copy of G whose synthesis weights moved a little (a stand-in for an unlearned generator)."""
    import copy

    out = copy.deepcopy(G)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.backbone.synthesis.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale * (p.std() if p.numel() > 1 else 1.0))
    return out


def build_erase_output(root: Path, G_src, G_unl, num_views: int = NUM_VIEWS) -> Path:
    """Write the files `guide erase --out root` produces (see guide.erase), from two generators."""
    from guide.cameras import view_yaws
    from guide.config import CameraConfig, EraseConfig
    from guide.io import Provenance, save_generator
    from guide.io.hashing import sha256_file
    from guide.render import camera_for, grid, png_bytes, render_views, save_images

    root.mkdir(parents=True)
    source = save_generator(G_src, root.parent / f"{root.name}_source" / "generator")
    save_generator(G_unl, root / "generator", provenance=Provenance(method="guide"))
    camera = CameraConfig()
    config = EraseConfig()
    z = torch.randn(1, G_src.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        w_u = G_src.mapping(z, camera_for(camera, 0.0, 0.0))
    w_t = w_u.mean(dim=1, keepdim=True).repeat(1, w_u.shape[1], 1)
    yaws = view_yaws(num_views, camera.yaw_range)
    before = render_views(G_src, w_u, camera, yaws)
    after = render_views(G_unl, w_u, camera, yaws)
    target = render_views(G_src, w_t, camera, yaws)
    save_images(before, root / "renders", "before")
    save_images(after, root / "renders", "after")
    save_images(target, root / "renders", "target")
    (root / "grid.png").write_bytes(png_bytes(grid([before, after, target], size=64)))
    (root / "losses.png").write_bytes(png_bytes(np.full((60, 120, 3), 255, np.uint8)))
    torch.save({"w_u": w_u, "w_t": w_t}, root / "latents.pt")
    (root / "losses.jsonl").write_text("".join(json.dumps({"step": i, "loss": 1.0 / i}) + "\n" for i in range(1, 4)))
    settings = {
        "identity": {"kind": "random", "value": 7},
        "erase": config.to_dict(),
        "source_generator": str(source.config),
        "source_generator_sha256": sha256_file(source.config),
    }
    (root / "config.json").write_text(json.dumps(settings, indent=2))
    (root / "metrics.json").write_text(json.dumps({"steps": 3, "pixel_l1_before_after": 0.1}, indent=2))
    return root


@pytest.fixture(scope="session")
def tiny_pair(tiny_generator_factory):
    """(source, unlearned) tiny random generators."""
    G_src = tiny_generator_factory(seed=0, nrr=16)
    return G_src, perturbed(G_src)


@pytest.fixture(scope="session")
def erase_output_template(tmp_path_factory, tiny_pair) -> Path:
    """One rendered erase output (built once per session; copy it before writing into it)."""
    return build_erase_output(tmp_path_factory.mktemp("erase") / "run", *tiny_pair)


@pytest.fixture
def erase_output(tmp_path, erase_output_template) -> Path:
    """A private copy of the erase output (its source generator path stays valid)."""
    out = tmp_path / "run"
    shutil.copytree(erase_output_template, out)
    return out


@pytest.fixture(scope="session")
def random_inception():
    """pytorch-fid's Inception with seeded random weights (built once)."""
    from guide.evaluate.inception import inception_features

    return inception_features(random_weights=True)


@pytest.fixture
def real_features(tmp_path) -> Path:
    """A stand-in for ffhq_real_feat.npy: [40, 2048] features."""
    path = tmp_path / "real_feat.npy"
    np.save(path, np.abs(np.random.default_rng(0).normal(0.2, 0.05, size=(40, 2048))).astype(np.float32))
    return path
