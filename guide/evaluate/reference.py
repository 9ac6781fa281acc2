"""The published values of the four metrics, shown beside ours (metrics.json, report.html and
`guide reproduce`).

Source (:data:`SOURCE`): the README of GUIDE's reference repository (KHU-AGI/GUIDE) reports, for
its OOD commands -- ``unlearn.py --inversion goae --inversion_image_path ./data/CelebAHQ/512
--seed 0`` (target photo 0, the script's default), baseline (``--target average --local``) and
GUIDE (``--target extra --target_d 30 --local --adj --glob``) -- on its five-photo CelebA-HQ
sample folder, with EG3D ffhqrebalanced512-128 and GOAE inversion, the numbers in
:data:`PUBLISHED`. They are one run each (one stochastic inversion, one training run, random
FID noise), so a re-run differs by that run-to-run spread too.

The paper's own tables (Seo et al., "Generative Unlearning for Any Identity", CVPR 2024,
arXiv:2405.09879) average over many identities; those numbers are not transcribed here, so every
other (method, scenario) pair shows "n/a" rather than a guess.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

PAPER = 'Seo et al., "Generative Unlearning for Any Identity", CVPR 2024 (arXiv:2405.09879)'
SOURCE = ("GUIDE reference repository README (KHU-AGI/GUIDE): OOD command on its five-photo CelebA-HQ sample "
          "folder (photo 0, seed 0), EG3D ffhqrebalanced512-128, GOAE inversion")
METHODS = ("baseline", "guide")
SCENARIOS = ("Random", "InD", "OOD")
METRICS = ("ID", "ID_others", "FID_pre", "delta_FID_real")

# (method, scenario) -> metric -> value, exactly as published; absent pairs are "n/a"
PUBLISHED: Dict[Tuple[str, str], Dict[str, float]] = {
    ("baseline", "OOD"): {"ID": 0.0818, "ID_others": 0.4122, "FID_pre": 9.487, "delta_FID_real": 4.891},
    ("guide", "OOD"): {"ID": 0.0183, "ID_others": 0.2797, "FID_pre": 7.497, "delta_FID_real": 3.331},
}


def published(method: Optional[str], scenario: Optional[str]) -> Dict[str, Optional[float]]:
    """Every metric's published value for (method, scenario); None where there is none."""
    values = PUBLISHED.get((str(method).lower(), str(scenario)), {})
    return {m: values.get(m) for m in METRICS}


def scenario_of(config: Mapping[str, Any]) -> Optional[str]:
    """The scenario an erasure corresponds to, when its settings tell: a random identity is
    Random, a photo erased from a folder with the others kept is the OOD protocol; a single photo
    or latent could be InD or OOD (None)."""
    identity = config.get("identity") if isinstance(config, Mapping) else None
    kind = identity.get("kind") if isinstance(identity, Mapping) else None
    return {"random": "Random", "folder": "OOD"}.get(kind)


def method_of(config: Mapping[str, Any]) -> Optional[str]:
    """'guide' or 'baseline' from an erasure's config.json."""
    erase = config.get("erase") if isinstance(config, Mapping) else None
    method = (erase or {}).get("method") if isinstance(erase, Mapping) else None
    return method if method in METHODS else None


def difference(ours: Optional[float], theirs: Optional[float]) -> Optional[float]:
    """ours - published, or None when either is missing."""
    return None if ours is None or theirs is None else float(ours) - float(theirs)


def comparison(metrics: Mapping[str, Any], method: Optional[str], scenario: Optional[str]) -> Dict[str, Any]:
    """The metrics.json ``published`` entry: the published values beside ours and the differences."""
    values = published(method, scenario)
    return {"source": SOURCE if any(v is not None for v in values.values()) else None,
            "method": method, "scenario": scenario, "values": values,
            "difference": {m: difference(metrics.get(m), values[m]) for m in METRICS}}
