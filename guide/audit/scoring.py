"""Identity embeddings of renders and photos through the evaluation scorer, and their similarities."""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch


class Embedder:
    """Images -> unit identity embeddings (float64, a NaN row where the scorer skipped a faceless
    image), counting the images embedded and the faces the detector missed."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer
        self.images = 0
        self.missed = 0

    def uint8(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Embeddings ``[N, D]`` of uint8 ``[H, W, 3]`` images."""
        emb, missed = self.scorer.embeddings(list(images))
        self.images += len(images)
        self.missed += int(missed)
        return emb.double().cpu()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[N, D]`` of generator images ``[N, 3, H, W]`` in [-1, 1]."""
        from guide.render import to_uint8

        return self.uint8(list(to_uint8(images)))


def similarities(emb: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    """Cosine similarity of each row of ``emb`` with the matching row of ``reference`` (or its one row)."""
    return (emb * reference).sum(dim=1).numpy()


def finite_mean(values) -> Optional[float]:
    """Mean of the finite values (None when there are none)."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if finite.size else None


def as_list(values) -> List[Optional[float]]:
    """JSON-ready floats (None for NaN)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).ravel()]


def view_scores(sims) -> dict:
    """``{"mean", "per_view"}`` of per-view similarities."""
    return {"mean": finite_mean(sims), "per_view": as_list(sims)}
