"""The networks of an audit: the evaluation scorer that measures, and the loss networks the attack uses.

Measuring uses the evaluation protocol (:class:`guide.evaluate.identity.IdentityScorer`:
CurricularFace IR-101 after MTCNN alignment); the optimisation attack optimises against other
networks (LPIPS-VGG and the ArcFace IR-SE50 identity loss of LTU), so it cannot simply game the
network that scores it. Anything with the same methods plugs in (``scorer.embeddings(images)``;
``lpips(a, b)``, ``id_loss(a, b)``), e.g. a toy world's networks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch


@dataclass
class AuditNetworks:
    """``scorer``: uint8 images -> unit embeddings (``embeddings(images) -> (emb [N,D], missed)``);
    ``lpips`` / ``id_loss``: the attack's losses on [-1,1] images (``id_loss=None``: LPIPS only);
    ``random_weights``: the numbers carry no meaning (tests, demos)."""

    scorer: Any
    lpips: torch.nn.Module
    id_loss: Optional[torch.nn.Module]
    note: str = ""
    random_weights: bool = False


def load_audit_networks(checkpoint_dir, device, *, random_weights: bool = False, no_face: str = "fixed",
                        attack_networks=None) -> AuditNetworks:
    """CurricularFace + MTCNN from the checkpoints folder for measuring, and LTU's LPIPS + ArcFace
    (``attack_networks``: a ready :class:`guide.erase.Networks`, else loaded) for the attack."""
    from guide.erase import load_networks
    from guide.evaluate.identity import identity_scorer

    scorer = identity_scorer(checkpoint_dir, device=device, random_weights=random_weights, no_face=no_face)
    attack = attack_networks if attack_networks is not None else load_networks(checkpoint_dir, device,
                                                                               random_weights=random_weights)
    note = f"measured with {scorer.note} + MTCNN; attack losses: " + (
        attack.note or "LPIPS-VGG16 + ArcFace IR-SE50 from the checkpoints folder")
    return AuditNetworks(scorer, attack.lpips.to(device),
                         attack.id_loss.to(device) if attack.id_loss is not None else None, note, random_weights)
