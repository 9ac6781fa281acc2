"""ID and ID_others: does the unlearned generator still render the erased (and the other) people?

The paper's protocol (GUIDE, ``unlearn.py`` + ``evaluate_id.py`` + ``id_sim.py``), as implemented:

* Renders: every identity is rendered by the source generator ("before") and by the unlearned
  generator ("after") from the same 11 cameras -- yaw offsets ``linspace(-pi/12, pi/12, 11)``,
  pitch offset -0.2, FOV 18.837, radius 2.7, the erasure's pivot -- at 512x512.
* Pairing: ``before`` and ``after`` of the same identity and the same view form one pair; its
  score is the CurricularFace IR-101 cosine similarity after MTCNN detection and five-point
  alignment to 112x112 (:class:`guide.identity.IDSimilarity`). ``evaluate_id.py`` zips the sorted
  before/after file lists and averages.
* **ID** = mean over the erased identity's views (lower = better forgotten).
* **ID_others** = mean over every view of every other identity (higher = better kept). In the
  reference, "others" are the remaining images of the inverted folder in the OOD setting (all five
  CelebA-HQ photos are inverted with GOAE, one is erased, the other four are rendered before and
  after); in its Random and InD runs the result folder holds only the erased identity, so its
  ID_others is the mean of an empty list. Here the others are, in this order of preference:
  latents the user gives (``.pt``: a tensor or a dict with ``w``/``ws``/``w_u``/``latents``,
  e.g. other erasures' ``latents.pt``), photos the user gives (inverted like the erased photo,
  needs :mod:`guide.inversion`), or by default (``Others(kind="auto")``) the other photos of the
  folder when the erasure came from one (``guide erase DIR/ --target-index K``: exactly the
  reference's OOD protocol; their latents are in the erasure's latents.pt) and otherwise 4
  random identities (z from a fixed seed, psi 1, frontal conditioning) -- the OOD setting's
  count. Others' renders are made here with the erasure's camera and constant noise, so before
  and after differ only by the weights.

Detection: the reference's evaluation thresholds (0.15 / 0.25 / 0.35, pyramid factor 0.707, see
:mod:`guide.identity.detect`) by default (``detection="reference"``); ``"facenet"`` uses
facenet-pytorch's stricter defaults (0.6 / 0.7 / 0.7), which miss more faces on renders.

Faces the detector misses: the reference crashes (its aligner returns nothing). Renders of EG3D
are already FFHQ-aligned, so by default (``no_face="fixed"``) such an image is aligned from fixed
landmark positions (:data:`FIXED_LANDMARKS`, the mean MTCNN landmarks of FFHQ-style 512x512 crops,
made left-right symmetric); ``"skip"`` drops the pair and ``"error"`` stops. The count is reported.

A quirk of ``evaluate_id.py`` not reproduced: it splits target from others by
``index // num_views`` over *lexicographically* sorted file names, which misgroups runs with 11 or
more identities (``unlearn_before_10_*`` sorts before ``unlearn_before_1_*``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from guide.config import CameraConfig
from guide.errors import GuideError
from guide.identity import IDSimilarity, NoFaceError, align_face

DeviceLike = Union[str, torch.device]
CURRICULARFACE_FILE = "CurricularFace_Backbone.pth"
NO_FACE_POLICIES = ("fixed", "skip", "error")
DETECTIONS = ("reference", "facenet")
DEFAULT_OTHERS = 4
OTHERS_SEED = 20240617  # far from the small seeds used to pick random identities to erase

# (x, y) as fractions of width/height: left eye, right eye, nose, left / right mouth corner
FIXED_LANDMARKS = np.array(
    [[0.355, 0.395], [0.645, 0.395], [0.500, 0.545], [0.375, 0.668], [0.625, 0.668]], dtype=np.float32)


# ------------------------------------------------------------------------------------ scoring


class IdentityScorer:
    """Pairs of images -> CurricularFace similarities, with the no-face policy applied."""

    def __init__(self, similarity: IDSimilarity, no_face: str = "fixed", note: str = "") -> None:
        if no_face not in NO_FACE_POLICIES:
            raise ValueError(f"no_face must be one of {NO_FACE_POLICIES}, got {no_face!r}")
        self.similarity = similarity
        self.no_face = no_face
        self.note = note

    def crop(self, image: np.ndarray, name: str = "image") -> Tuple[Optional[np.ndarray], bool]:
        """Aligned 112x112 crop and whether a face was detected (crop None when skipped)."""
        faces = self.similarity.detector(image)
        if faces:
            return align_face(image, faces[0].landmarks)[0], True
        if self.no_face == "error":
            raise NoFaceError(f"no face found in {name}")
        if self.no_face == "skip":
            return None, False
        h, w = image.shape[:2]
        return align_face(image, FIXED_LANDMARKS * np.array([w, h], dtype=np.float32))[0], False

    def embeddings(self, images: Sequence[np.ndarray], names: Sequence[str] = ()) -> Tuple[torch.Tensor, int]:
        """Unit embeddings ``[N, D]`` of uint8 images (a row of NaN where the no-face policy skipped the
        image) and how many images had no detected face."""
        crops, keep, missed = [], [], 0
        for i, image in enumerate(images):
            crop, found = self.crop(image, names[i] if i < len(names) else f"image {i}")
            missed += not found
            if crop is not None:
                crops.append(crop)
                keep.append(i)
        if not crops:
            return torch.full((len(images), 1), float("nan")), missed
        emb = self.similarity.embed_crops(crops).cpu()
        out = torch.full((len(images), emb.shape[1]), float("nan"), dtype=emb.dtype)
        out[keep] = emb
        return out, missed

    def pair_similarities(
        self, images_a: Sequence[np.ndarray], images_b: Sequence[np.ndarray], names: Sequence[str] = ()
    ) -> Tuple[np.ndarray, int]:
        """Similarity of every pair (NaN where skipped) and how many images had no detected face."""
        if len(images_a) != len(images_b):
            raise ValueError(f"image lists differ in length: {len(images_a)} vs {len(images_b)}")
        labels = [names[i] if i < len(names) else f"pair {i}" for i in range(len(images_a))]
        emb, missed = self.embeddings(list(images_a) + list(images_b),
                                      [f"{x} (first image)" for x in labels] + [f"{x} (second image)" for x in labels])
        n = len(images_a)
        return (emb[:n] * emb[n:]).sum(dim=1).double().numpy(), missed


def identity_scorer(
    checkpoint_dir: Optional[Union[str, os.PathLike]] = None,
    *,
    device: DeviceLike = "cpu",
    random_weights: bool = False,
    seed: int = 0,
    no_face: str = "fixed",
    detection: str = "reference",
) -> IdentityScorer:
    """CurricularFace IR-101 (``CurricularFace_Backbone.pth`` from the checkpoints folder) + MTCNN
    with the ``detection`` settings (see the module docstring).

    ``random_weights=True``: a seeded random IR-101 instead (tests, demos; numbers meaningless).
    """
    from guide.identity import ir101
    from guide.identity.detect import DETECTOR_SETTINGS, FaceDetector

    if detection not in DETECTIONS:
        raise ValueError(f"detection must be one of {DETECTIONS}, got {detection!r}")

    if random_weights:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone = ir101()
        note = f"IR-101 with RANDOM weights (seed {seed})"
    else:
        from guide.checkpoints import require_checkpoint
        from guide.paths import resolve_checkpoint_dir

        backbone = ir101(require_checkpoint(CURRICULARFACE_FILE, resolve_checkpoint_dir(checkpoint_dir)))
        note = "CurricularFace IR-101"
    detector = FaceDetector(device, **DETECTOR_SETTINGS[detection])
    note += f", MTCNN thresholds {'/'.join(str(v) for v in DETECTOR_SETTINGS[detection]['thresholds'])} ({detection})"
    return IdentityScorer(IDSimilarity(backbone.to(device), detector=detector), no_face=no_face, note=note)


def load_image(path: Union[str, Path]) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB of an image file."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


# ------------------------------------------------------------------------------------- others


@dataclass(frozen=True)
class Others:
    """Where the other identities come from: ``latents`` files, ``photos``, ``random`` samples, the
    other photos of a ``folder`` erasure (its latents.pt ``w_others``), or ``auto``: the folder's
    other photos when the erasure came from a folder, else ``count`` random samples."""

    kind: str = "auto"  # 'auto' | 'random' | 'folder' | 'latents' | 'photos' | 'none'
    count: int = DEFAULT_OTHERS
    seed: int = OTHERS_SEED
    paths: Tuple[str, ...] = ()
    truncation_psi: float = 1.0
    truncation_cutoff: Optional[int] = 14

    def resolve(self, run: Any) -> "Others":
        """``auto`` made concrete for an erase output ``run`` (:class:`EraseOutput`)."""
        if self.kind != "auto":
            return self
        identity = run.config.get("identity") if isinstance(run.config, dict) else None
        if isinstance(identity, dict) and identity.get("kind") == "folder":
            return Others("folder", paths=(str(run.root / "latents.pt"),))
        if self.count <= 0:
            return Others("none", count=0)
        return Others("random", count=self.count, seed=self.seed, truncation_psi=self.truncation_psi,
                      truncation_cutoff=self.truncation_cutoff)

    def describe(self) -> str:
        if self.kind == "random":
            return f"{self.count} random identities (seed {self.seed}, psi {self.truncation_psi})"
        if self.kind == "none":
            return "none"
        if self.kind == "folder":
            return "the other photos of the erased folder (the reference's OOD protocol)"
        if self.kind == "auto":
            return f"auto (the folder's other photos, else {self.count} random identities)"
        return f"{self.kind}: " + ", ".join(self.paths)


def _latents_from_file(path: Path, num_ws: int, w_dim: int, keys: Sequence[str] = ("w", "ws", "w_u", "latents")
                       ) -> torch.Tensor:
    from guide.io.state_files import load_state_file

    if not path.is_file():
        raise GuideError(f"latent file {path} not found")
    value = load_state_file(path)  # unreadable or implausible (stride-0, huge): one line
    if isinstance(value, dict):
        value = next((value[k] for k in keys if k in value), None)
    if not isinstance(value, torch.Tensor) or value.numel() % (num_ws * w_dim) or value.numel() == 0:
        raise GuideError(f"{path} holds no latents [K,{num_ws},{w_dim}] (a tensor, or a dict with w/ws/w_u/latents)")
    if not bool(torch.isfinite(value).all()):
        raise GuideError(f"{path}: the latents hold NaN or infinity")
    return value.float().reshape(-1, num_ws, w_dim)


def other_latents(others: Others, G_src, camera: CameraConfig, device: DeviceLike,
                  checkpoint_dir: Optional[Union[str, os.PathLike]] = None) -> torch.Tensor:
    """Latents ``[K, num_ws, w_dim]`` of the other identities (K may be 0)."""
    device = torch.device(device)
    if others.kind == "auto":
        raise ValueError("resolve Others(kind='auto') against the erase output first (Others.resolve)")
    if others.kind == "none" or (others.kind == "random" and others.count <= 0):
        return torch.zeros(0, G_src.num_ws, G_src.w_dim, device=device)
    if others.kind == "folder":
        return _latents_from_file(Path(others.paths[0]), G_src.num_ws, G_src.w_dim, keys=("w_others",)).to(device)
    if others.kind == "latents":
        return torch.cat([_latents_from_file(Path(p), G_src.num_ws, G_src.w_dim) for p in others.paths]).to(device)
    if others.kind == "photos":
        try:
            from guide.inversion import PhotoModels, invert_photo
        except ImportError:
            raise GuideError("other identities from photos need GOAE inversion (guide.inversion), which this "
                             "installation lacks; pass latents instead") from None
        models = PhotoModels()  # one encoder and face detector for all the photos
        # w_avg from the file (a missing one is a one-line error), as for the erased photo
        return torch.cat([invert_photo(p, checkpoint_dir=checkpoint_dir, device=device, models=models)
                          for p in others.paths]).reshape(-1, G_src.num_ws, G_src.w_dim)
    if others.kind == "random":
        from guide.render import camera_for

        gen = torch.Generator().manual_seed(int(others.seed))
        z = torch.randn(others.count, G_src.z_dim, generator=gen).to(device)
        c = camera_for(camera, 0.0, 0.0, device).repeat(others.count, 1)
        with torch.no_grad():
            return G_src.mapping(z, c, truncation_psi=others.truncation_psi,
                                 truncation_cutoff=others.truncation_cutoff)
    raise ValueError(f"unknown kind of others {others.kind!r}")


def render_before_after(G_src, G_unl, latents: torch.Tensor, camera: CameraConfig, num_views: int,
                        progress: bool = True, renders: str = "paired", seed: int = 0
                        ) -> List[Tuple[np.ndarray, np.ndarray]]:
    """For each latent: uint8 renders ``[V, H, W, 3]`` by the source and by the unlearned generator
    (``renders="random"``: fresh seeded noise and ray jitter per render, as the erasure's own)."""
    from tqdm import tqdm

    from guide.cameras import view_yaws
    from guide.render import render_generator, render_views, to_uint8

    yaws = view_yaws(num_views, camera.yaw_range)

    def views_of(G, w, *stream):
        if renders == "paired":
            return to_uint8(render_views(G, w, camera, yaws))
        return to_uint8(render_views(G, w, camera, yaws, deterministic=False,
                                     generator=render_generator(seed, *stream, device=w.device)))

    out = []
    for k in tqdm(range(latents.shape[0]), desc="rendering other identities", unit="id", disable=not progress,
                  dynamic_ncols=True):
        w = latents[k:k + 1]
        out.append((views_of(G_src, w, 3 + k, 0), views_of(G_unl, w, 3 + k, 1)))
    return out


# ------------------------------------------------------------------------------------ results


def _mean(values: np.ndarray) -> Optional[float]:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


@dataclass
class IDResult:
    """ID, ID_others and what they were computed from."""

    id: Optional[float]
    id_per_view: List[Optional[float]]
    id_others: Optional[float]
    others_per_identity: List[List[Optional[float]]] = field(default_factory=list)
    others: str = ""
    num_views: int = 0
    no_face: int = 0
    no_face_policy: str = "fixed"
    network: str = ""

    def metrics(self) -> Dict[str, Any]:
        """The ``metrics.json`` entries."""
        clean = lambda xs: [None if x is None or not np.isfinite(x) else float(x) for x in xs]  # noqa: E731
        return {"ID": self.id, "ID_others": self.id_others,
                "identity": {"ID_per_view": clean(self.id_per_view),
                             "ID_others_per_identity": [clean(r) for r in self.others_per_identity],
                             "others": self.others, "num_views": self.num_views,
                             "images_without_detected_face": self.no_face, "no_face_policy": self.no_face_policy,
                             "network": self.network}}


def evaluate_identity(
    before: Sequence[np.ndarray],
    after: Sequence[np.ndarray],
    scorer: IdentityScorer,
    *,
    others_pairs: Sequence[Tuple[np.ndarray, np.ndarray]] = (),
    others: str = "",
    progress: bool = True,
) -> IDResult:
    """ID over the erased identity's (before, after) views and ID_others over the others' views."""
    from tqdm import tqdm

    groups = [(list(before), list(after))] + [(list(b), list(a)) for b, a in others_pairs]
    results, missed = [], 0
    for i, (b, a) in enumerate(tqdm(groups, desc="ID similarity", unit="id", disable=not progress,
                                    dynamic_ncols=True)):
        names = [f"{'erased identity' if i == 0 else f'other identity {i}'} view {v}" for v in range(len(b))]
        sims, m = scorer.pair_similarities(b, a, names)
        results.append(sims)
        missed += m
    own, rest = results[0], results[1:]
    id_others = _mean(np.concatenate(rest)) if rest else None
    listed = lambda xs: [float(x) if np.isfinite(x) else None for x in xs]  # noqa: E731
    return IDResult(_mean(own), listed(own), id_others, [listed(r) for r in rest], others,
                    len(before), missed, scorer.no_face, scorer.note)
