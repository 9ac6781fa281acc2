"""The shipped toy world, loaded: generator, w_avg, LTU loss networks and the ID-metric scorer.

Every file is checked against ``weights/manifest.json`` (sha256) before it is read; a missing or
damaged file is a one-line :class:`ToyWorldError` that says how to regenerate it
(``python -m guide.toy.train``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

import torch
from torch import nn

from guide.errors import GuideError

WEIGHTS_DIR = Path(__file__).parent / "weights"
MANIFEST = "manifest.json"
GENERATOR_FILES = ("generator.safetensors", "generator.json")
NET_FILES = {"arcface": "arcface.safetensors", "curricularface": "curricularface.safetensors"}
NET_WIDTHS = {"arcface": 16, "curricularface": 24}
TOY_ITERS = 60
TOY_LR = 2e-3
TOY_GLOBAL_WEIGHT = 3.0
REGENERATE = "regenerate it with `python -m guide.toy.train --seed 0`"


class ToyWorldError(GuideError):
    """A toy-world weight file is missing or does not match its manifest."""


class FixedFace:
    """The toy world's face "detector": a toy head always sits in the middle of the render, so it
    reports one face at the ID metric's fixed landmarks (``guide.evaluate.identity.FIXED_LANDMARKS``)."""

    def __call__(self, image) -> List:
        import numpy as np

        from guide.evaluate.identity import FIXED_LANDMARKS
        from guide.identity.detect import Face

        h, w = np.asarray(image).shape[:2]
        return [Face(box=np.array([0.0, 0.0, w, h], dtype=np.float32), probability=1.0,
                     landmarks=FIXED_LANDMARKS * np.array([w, h], dtype=np.float32))]


def toy_identity_scorer(backbone: nn.Module):
    """The ID metric's scorer around a toy identity network (crops at the fixed landmarks)."""
    from guide.evaluate.identity import IdentityScorer
    from guide.identity.similarity import IDSimilarity

    return IdentityScorer(IDSimilarity(backbone, detector=FixedFace()), no_face="error",
                          note="toy CurricularFace (guide.toy), crops at fixed landmarks")


def read_manifest(folder: Union[str, Path] = WEIGHTS_DIR) -> dict:
    """The manifest of a toy-world weights folder (one-line error when absent or unreadable)."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ToyWorldError(f"{path}: missing or unreadable toy-world manifest ({type(exc).__name__}); {REGENERATE}") from None


def verified(folder: Union[str, Path], name: str, manifest: dict) -> Path:
    """``folder/name`` after checking its sha256 against the manifest."""
    from guide.io.hashing import sha256_file

    path = Path(folder) / name
    entry = manifest.get("files", {}).get(name)
    if entry is None:
        raise ToyWorldError(f"{Path(folder) / MANIFEST} does not list {name}; {REGENERATE}")
    if not path.is_file():
        raise ToyWorldError(f"{path}: missing toy-world file; {REGENERATE}")
    if sha256_file(path) != entry["sha256"]:
        raise ToyWorldError(f"{path}: sha256 differs from the manifest (damaged or replaced); {REGENERATE}")
    return path


def load_identity_net(name: str, folder: Union[str, Path] = WEIGHTS_DIR, device="cpu",
                      manifest: Optional[dict] = None) -> nn.Module:
    """A trained toy identity network ('arcface' or 'curricularface'), eval mode, frozen."""
    from guide.io.state_files import load_state_file
    from guide.toy.nets import ToyFaceNet

    manifest = read_manifest(folder) if manifest is None else manifest
    path = verified(folder, NET_FILES[name], manifest)
    net = ToyFaceNet(width=NET_WIDTHS[name])
    try:
        net.load_state_dict(load_state_file(path), strict=True)
    except RuntimeError as exc:
        raise ToyWorldError(f"{path}: weights do not fit the toy {name} network ({str(exc).splitlines()[0]})") from None
    return net.eval().requires_grad_(False).to(device)


def load_toy_generator(folder: Union[str, Path] = WEIGHTS_DIR, device="cpu", manifest: Optional[dict] = None):
    """The toy generator (eval, frozen) with its neural rendering resolution."""
    from guide.io.generator_io import load_generator

    manifest = read_manifest(folder) if manifest is None else manifest
    for name in GENERATOR_FILES:
        verified(folder, name, manifest)
    return load_generator(Path(folder) / "generator.json", device=device)


class ToyFeatures(nn.Module):
    """FID features of the toy world: toy CurricularFace embeddings of whole renders (``dims`` 128),
    after the same uint8 quantisation as the Inception path. A toy FID_pre compares the two
    generators' distributions of heads; it is not comparable to an Inception FID."""

    def __init__(self, network: nn.Module, identifier: str) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.identifier = identifier
        self.dims = int(network.head.out_features)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from guide.evaluate.inception import InceptionFeatures

        x = InceptionFeatures.to_unit_range(images.to(self.device, torch.float32)) * 2 - 1
        return self.network(x).float()


@dataclass
class ToyWorld:
    """Everything an erase and its evaluation need in the toy world."""

    G: nn.Module
    w_avg: torch.Tensor  # [1, num_ws, w_dim]: the mapping's tracked mean
    networks: "object"  # guide.erase.Networks: toy LPIPS + IDLoss(toy ArcFace)
    curricularface: nn.Module
    generator_path: Path
    manifest: dict

    def scorer(self):
        """The ID-metric scorer (toy CurricularFace)."""
        return toy_identity_scorer(self.curricularface)

    def features(self) -> ToyFeatures:
        """The toy FID features."""
        sha = self.manifest["files"][NET_FILES["curricularface"]]["sha256"][:12]
        return ToyFeatures(self.curricularface, f"toy-curricularface-{sha}")

    def audit_networks(self):
        """:class:`guide.audit.networks.AuditNetworks`: toy CurricularFace measures, toy LPIPS +
        toy ArcFace attack (as in the real world, the attack's identity network is not the scorer)."""
        from guide.audit.networks import AuditNetworks

        return AuditNetworks(self.scorer(), self.networks.lpips, self.networks.id_loss,
                             note=f"toy world: measured with the {self.scorer().note}; attack losses: {self.networks.note}")

    def eval_networks(self, device="cpu"):
        """:class:`guide.evaluate.EvalNetworks` with the toy scorer and features."""
        from guide.evaluate.pipeline import EvalNetworks

        return EvalNetworks(device=device, scorer=self.scorer(), inception=self.features())


def is_toy_generator(sha256: Optional[str], folder: Union[str, Path] = WEIGHTS_DIR) -> bool:
    """Whether a generator description with this sha256 (an erase's config.json
    ``source_generator_sha256``) is the shipped toy generator."""
    try:
        manifest = read_manifest(folder)
    except ToyWorldError:
        return False
    return bool(sha256) and manifest.get("files", {}).get("generator.json", {}).get("sha256") == sha256


def toy_networks(folder: Union[str, Path] = WEIGHTS_DIR, device="cpu", manifest: Optional[dict] = None):
    """LTU's loss networks in the toy world: random-AlexNet LPIPS and IDLoss around the toy ArcFace."""
    from guide.erase import Networks
    from guide.identity import IDLoss
    from guide.perceptual import lpips_alex_random

    arcface = load_identity_net("arcface", folder, device, manifest)
    return Networks(lpips_alex_random(0, device=device), IDLoss(arcface),
                    note="toy world: LPIPS with a random AlexNet trunk, toy ArcFace (guide.toy)")


def toy_world(device="cpu", folder: Union[str, Path] = WEIGHTS_DIR) -> ToyWorld:
    """Load the shipped toy world on ``device`` (every file sha256-checked against the manifest)."""
    manifest = read_manifest(folder)
    from guide.erase import load_w_avg

    G = load_toy_generator(folder, device, manifest)
    w_avg, _ = load_w_avg(G, None, device, "mapping")
    return ToyWorld(G=G, w_avg=w_avg, networks=toy_networks(folder, device, manifest),
                    curricularface=load_identity_net("curricularface", folder, device, manifest),
                    generator_path=Path(folder) / "generator.json", manifest=manifest)


def apply_toy_preset(config):
    """Size an erase config's LTU for the toy world (in place; returns it): lr 2e-3 instead of the
    paper's 1e-4 (60 steps instead of 1000, so an erase fits a CPU minute), and the global
    preservation term weighted 3 instead of 1 -- at the higher lr and with one-cycle-trained toy
    heads, weight 1 lets the other heads drift (toy heads 0-4, lr 2e-3, 60 steps: ID_others
    0.32 to 0.66 at weight 1, 0.39 to 0.83 at weight 3, which buys that with a weaker erase: ID of
    the erased head from -0.18 to 0.16 at weight 1, from -0.11 to 0.35 at weight 3; per head in
    tests/guide/toy/test_effect.py). Toy-world only; real erases
    keep the paper's settings."""
    config.ltu.lr = TOY_LR
    if config.ltu.losses.global_preservation:
        config.ltu.losses.global_weight = TOY_GLOBAL_WEIGHT
    return config


def toy_erase_config(method: str = "guide", iters: int = TOY_ITERS, seed: int = 0):
    """GUIDE's preset (or the baseline's) sized for the toy world (:func:`apply_toy_preset`), 60
    iterations, w_avg from the toy generator's own mapping."""
    from guide.config import method_preset

    config = method_preset(method)
    config.seed = seed
    config.ltu.iters = iters
    config.inversion.w_avg = "mapping"
    return apply_toy_preset(config)
