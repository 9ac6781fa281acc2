"""FID_pre and ΔFID_real: how much the unlearned generator's images moved, as a distribution.

The paper's protocol (GUIDE, ``evaluate_fid.py``), as implemented here:

* N = 5000 samples from each generator with the same seeds: z ~ N(0, I), yaw ~ U(-pi/12, pi/12),
  pitch offset -0.2, truncation psi 1.0 with cutoff 14, frontal conditioning camera, and -- the
  paper protocol, our default -- independent backbone noise and ray jitter for the two
  generators (``sampling="paired"`` shares them instead: lower variance, not comparable with
  the paper; details in :mod:`guide.evaluate.sampling`);
* pytorch-fid's Inception-v3 pool features (2048-d) of the images after the reference's uint8
  round trip (:mod:`guide.evaluate.inception`), weights from the checkpoints folder only;
* ``FID_pre = FID(pretrained samples, unlearned samples)`` -- lower means the rest of the
  distribution was left alone;
* ``ΔFID_real = FID(real, unlearned) - FID(real, pretrained)`` with real statistics the user
  supplies (the reference ships FFHQ features as ``ffhq_real_feat.npy``) -- how much farther from
  real faces the unlearned generator got (near 0 is good, negative is possible).

Two bugs of the reference script are fixed here:

* it only defines ``skip_pretrained`` when the pretrained samples are already on disk, so a first
  run (nothing cached) dies with ``NameError``; here a missing cache entry is simply computed;
* for the unlearned model it calls ``G.mapping(z, c, truncation_psi=truncation,
  truncation_cutoff=truncation)``, i.e. passes psi as the layer cutoff; with psi = 1 truncation is
  the identity so the paper's numbers are unaffected, but any other psi would truncate the two
  models differently. Here both models get the same ``truncation_psi`` and ``truncation_cutoff``.

Features of generated samples are cached (:mod:`guide.evaluate.cache`) by generator fingerprint,
seed and settings, so re-evaluating costs nothing and the pretrained model's features are shared
by every erasure made from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from guide.evaluate.cache import FeatureCache, cache_key, generator_fingerprint
from guide.evaluate.frechet import Statistics, delta_fid, fid_from_features, frechet_distance, statistics_of
from guide.evaluate.inception import InceptionFeatures
from guide.evaluate.sampling import SampleSettings, batch_ranges, render_samples

DeviceLike = Union[str, torch.device]
STORE_EVERY = 500  # samples between cache writes while computing (survives interruptions)


def generator_features(
    G: torch.nn.Module,
    settings: SampleSettings,
    extractor: InceptionFeatures,
    *,
    batch: int = 8,
    device: DeviceLike = "cpu",
    cache: Optional[FeatureCache] = None,
    label: str = "generator",
    fingerprint: Optional[str] = None,
    progress: bool = True,
    role: str = "pretrained",
) -> np.ndarray:
    """Inception features ``[settings.num, 2048]`` of ``G``'s protocol samples, cached. ``role``:
    which generator of the comparison ``G`` is (its own noise stream under the paper protocol)."""
    from tqdm import tqdm

    cache = cache or FeatureCache(None)
    fingerprint = fingerprint or generator_fingerprint(G)
    fields = {"generator": fingerprint, "samples": settings.key_fields(batch, role),
              "features": extractor.identifier}
    key = cache_key(fields)
    have = cache.load(key, extractor.dims)
    if have is not None and (len(have) >= settings.num if settings.prefix_stable else len(have) == settings.num):
        return have[: settings.num]
    start = len(have) if have is not None and settings.prefix_stable else 0
    parts = [have[:start]] if start else []
    about = {"label": label, **fields}
    G = G.to(device).eval()
    done_since_store = 0
    with tqdm(total=settings.num, initial=start, desc=f"FID samples ({label})", unit="img",
              disable=not progress, dynamic_ncols=True) as bar:
        for a, b in batch_ranges(start, settings.num, batch):
            images = render_samples(G, settings, a, b, device, role)
            parts.append(extractor(images).cpu().numpy())
            bar.update(b - a)
            done_since_store += b - a
            if settings.prefix_stable and done_since_store >= STORE_EVERY and b < settings.num:
                cache.store(key, np.concatenate(parts), about)
                done_since_store = 0
    features = np.concatenate(parts)
    cache.store(key, features, about)
    return features


@dataclass
class FIDResult:
    """The two FID numbers (ΔFID_real is None without real statistics) and how they were made."""

    fid_pre: float
    delta_fid_real: Optional[float]
    fid_real_pretrained: Optional[float]
    fid_real_unlearned: Optional[float]
    num: int
    settings: Dict[str, Any] = field(default_factory=dict)
    details: Dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> Dict[str, Any]:
        """The ``metrics.json`` entries."""
        return {"FID_pre": self.fid_pre, "delta_FID_real": self.delta_fid_real,
                "fid": {"FID_real_pretrained": self.fid_real_pretrained,
                        "FID_real_unlearned": self.fid_real_unlearned, "num_samples": self.num,
                        "settings": self.settings, **self.details}}


def fid_scores(
    features_pretrained: np.ndarray, features_unlearned: np.ndarray, real: Optional[Statistics] = None
) -> Dict[str, Optional[float]]:
    """FID_pre, FID(real, pretrained), FID(real, unlearned) and ΔFID_real from features."""
    fid_pre = fid_from_features(features_pretrained, features_unlearned, ("pretrained samples", "unlearned samples"))
    if real is None:
        return {"FID_pre": fid_pre, "FID_real_pretrained": None, "FID_real_unlearned": None, "delta_FID_real": None}
    pre = frechet_distance(real, statistics_of(features_pretrained, "pretrained samples"),
                           ("real statistics", "pretrained samples"))
    unl = frechet_distance(real, statistics_of(features_unlearned, "unlearned samples"),
                           ("real statistics", "unlearned samples"))
    return {"FID_pre": fid_pre, "FID_real_pretrained": pre, "FID_real_unlearned": unl,
            "delta_FID_real": delta_fid(unl, pre)}


def evaluate_fid(
    G_pretrained: torch.nn.Module,
    G_unlearned: torch.nn.Module,
    extractor: InceptionFeatures,
    settings: SampleSettings = SampleSettings(),
    *,
    real: Optional[Statistics] = None,
    real_source: Optional[str] = None,
    batch: int = 8,
    device: DeviceLike = "cpu",
    cache: Optional[FeatureCache] = None,
    progress: bool = True,
) -> FIDResult:
    """FID_pre and (with ``real``) ΔFID_real of an unlearned generator against its source."""
    if real is not None and real.dim != extractor.dims:
        from guide.evaluate.frechet import StatisticsError

        raise StatisticsError(f"real statistics are {real.dim}-d but the Inception features are {extractor.dims}-d")
    fingerprints = {}
    features = {}
    for label, G in (("pretrained", G_pretrained), ("unlearned", G_unlearned)):
        fingerprints[label] = generator_fingerprint(G)
        features[label] = generator_features(G, settings, extractor, batch=batch, device=device, cache=cache,
                                             label=label, fingerprint=fingerprints[label], progress=progress,
                                             role=label)
    scores = fid_scores(features["pretrained"], features["unlearned"], real)
    details = {"features": extractor.identifier, "real_statistics": real_source,
               "pretrained_fingerprint": fingerprints["pretrained"],
               "unlearned_fingerprint": fingerprints["unlearned"],
               "cache": str(cache.root) if cache is not None and cache.root is not None else None}
    if fingerprints["pretrained"] == fingerprints["unlearned"]:
        details["note"] = "the two generators have identical weights" + (
            " (FID_pre > 0 is the metric's noise floor under the paper protocol)" if settings.sampling == "paper"
            else "")
    return FIDResult(scores["FID_pre"], scores["delta_FID_real"], scores["FID_real_pretrained"],
                     scores["FID_real_unlearned"], settings.num, settings.as_dict(), details)
