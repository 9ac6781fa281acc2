"""The acceptance level: the ID similarity above which a face verifier would say "same person".

No published threshold fits this pipeline (the scorer, its alignment and rendered faces), and we
do not invent one. By default the level is *calibrated here*: N random identities of the source
generator (z from the audit's seed, psi 1) are rendered from the frontal evaluation view
(yaw 0, the evaluation pitch), every pair of different identities is scored with the evaluation
scorer, and the level is the (1 - FAR) quantile of those impostor similarities -- a verifier using
it would accept that fraction FAR of pairs of different (generated) people. Or the user gives a
level (``--threshold``), e.g. the operating point of their own verification system; the report
says which one was used.

Limits: impostors are faces of the source generator, not real photos; with fewer than 1/FAR
pairs the quantile lies at the extreme of the sample; random-weight networks make it meaningless.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from guide.audit.scoring import Embedder
from guide.config import CameraConfig, LTUConfig
from guide.errors import GuideError


def calibrate_threshold(G_src, embed: Embedder, camera: CameraConfig, count: int, false_accept_rate: float,
                        generator: torch.Generator, *, device="cpu", chunk: int = 8) -> dict:
    """The (1 - FAR) quantile of impostor similarities among ``count`` random identities (see module doc)."""
    from guide.render import camera_for, render_views

    if count < 2:
        raise ValueError(f"the threshold calibration needs at least 2 impostor identities, got {count}")
    if not 0 < false_accept_rate < 1:
        raise ValueError(f"the false accept rate must lie in (0, 1), got {false_accept_rate}")
    z = torch.randn(count, G_src.z_dim, generator=generator).to(device)
    c = camera_for(camera, 0.0, 0.0, device).repeat(count, 1)
    ltu = LTUConfig()  # random identities as everywhere in the toolkit: psi 1, cutoff 14
    with torch.no_grad():
        ws = G_src.mapping(z, c, truncation_psi=ltu.truncation_psi, truncation_cutoff=ltu.truncation_cutoff)
    emb = torch.cat([embed(render_views(G_src, ws[i:i + chunk], camera, [0.0])) for i in range(0, count, chunk)])
    table = (emb @ emb.T).numpy()
    upper = table[np.triu_indices(count, k=1)]
    sims = upper[np.isfinite(upper)]
    if sims.size == 0:
        raise GuideError("no impostor pair could be scored (renders without a detected face were skipped: "
                         "use --no-face fixed, or give --threshold)")
    record = {"value": float(np.quantile(sims, 1.0 - false_accept_rate)), "source": "calibrated",
              "false_accept_rate": float(false_accept_rate), "impostors": int(count), "pairs": int(sims.size),
              "impostor_mean": float(sims.mean()), "impostor_std": float(sims.std()),
              "how": f"the {1 - false_accept_rate:.4g} quantile of the similarities of {sims.size} pairs of "
                     f"{count} random identities of the source generator (frontal view)"}
    if sims.size * false_accept_rate < 1:
        record["caution"] = (f"{sims.size} pairs are fewer than 1/FAR = {1 / false_accept_rate:.0f}: the level is "
                             "the extreme of the sample (use more --impostors)")
    return record


def given_threshold(value: Optional[float]) -> Optional[dict]:
    """A level given by the user (None when none was given)."""
    if value is None:
        return None
    return {"value": float(value), "source": "user", "how": "given by the user (--threshold)"}
