"""Latents of a batch's identities and retain set, one at a time so that one bad entry (a
missing latent file, a photo without a face) is recorded and skipped instead of stopping the rest."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from guide.batch.schema import JobIdentity
from guide.config import EraseConfig
from guide.inversion import PhotoModels


def failure_reason(exc: BaseException) -> str:
    """One line for the status file: GuideErrors as their message, others with their type."""
    from guide.errors import GuideError

    text = exc.one_line() if isinstance(exc, GuideError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def resolve_latents(entries: Sequence[JobIdentity], G_src, config: EraseConfig, w_avg: torch.Tensor,
                    checkpoint_dir, device, on_failure: Callable[[JobIdentity, str], None],
                    photo_models: Optional[PhotoModels] = None, erasing: bool = True
                    ) -> Tuple[List[JobIdentity], torch.Tensor]:
    """(the entries that resolved, their w_u [K,num_ws,w_dim]); failures go to on_failure.
    Photos are inverted with `photo_models` (encoder and face detector kept between calls).
    `erasing`: the latents are erased (their UFO targets need the w_avg file, see
    guide.erase.w_avg_problem); False for the retain set, which is only rendered."""
    from guide.erase import identity_latent, w_avg_problem
    from guide.errors import GuideError

    photo_models = photo_models if photo_models is not None else PhotoModels()
    ok, latents = [], []
    for entry in entries:
        try:
            problem = w_avg_problem(entry.to_identity(), config, checkpoint_dir) if erasing else None
            if problem:
                raise GuideError(problem)
            w = identity_latent(entry.to_identity(), G_src, config, w_avg, checkpoint_dir, device, photo_models)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - recorded per identity, the batch goes on
            on_failure(entry, failure_reason(exc))
            continue
        ok.append(entry)
        latents.append(w.detach().reshape(1, G_src.num_ws, G_src.w_dim))
    w_u = torch.cat(latents) if latents else torch.zeros(0, G_src.num_ws, G_src.w_dim, device=device)
    return ok, w_u


def retain_latents(entries: Sequence[JobIdentity], G_src, config: EraseConfig, w_avg: torch.Tensor,
                   checkpoint_dir, device, photo_models: Optional[PhotoModels] = None
                   ) -> Tuple[List[str], torch.Tensor, Dict[str, str]]:
    """(ids, latents [R,...], {id: why it was skipped}) of the retain set."""
    skipped: Dict[str, str] = {}
    ok, w = resolve_latents(entries, G_src, config, w_avg, checkpoint_dir, device,
                            lambda e, why: skipped.__setitem__(e.id, why), photo_models, erasing=False)
    return [e.id for e in ok], w, skipped
