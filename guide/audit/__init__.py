"""`guide audit`: try to get an erased person back, and report how far the erasure holds.

GUIDE judges an erasure by rendering the erased latent w_u with the unlearned generator. The
audit asks what an attacker who has the unlearned generator (and, where there is one, the
person's photo) can still make, and measures every attack on the source generator too, as the
ceiling:

1. re-inversion (:mod:`~guide.audit.attack`): the photo inverted again with GOAE, rendered from
   the evaluation views, ID similarity to the photo;
2. optimisation attack (:mod:`~guide.audit.attack`): Adam on a W+ latent so that the generator
   reproduces the aligned photo at its estimated camera (LPIPS + identity loss), from the
   re-inverted latent and from w_avg; the best ID similarity to the photo over the views;
3. leakage radius (:mod:`~guide.audit.leakage`): ID similarity of renders of w_u + r·u to the
   source's renders of w_u, for random unit directions u, at radii r;
4. neighbours kept: the same curve around retained identities.

An acceptance level (:mod:`~guide.audit.threshold`: calibrated on impostor pairs, or given by the
user) turns the numbers into one-line verdicts (:mod:`~guide.audit.verdicts`). Inputs and their
checks: :mod:`~guide.audit.inputs` (erase folder, generators) and :mod:`~guide.audit.photo`;
networks: :mod:`~guide.audit.networks`; the whole run and its files: :mod:`~guide.audit.pipeline`;
the figures: :mod:`~guide.audit.plot`; the report.html section: :mod:`~guide.audit.report`;
batches: :mod:`~guide.audit.batch`.

The identity scorer, the attack's loss networks and both generators are arguments, so any
generator/identity network (e.g. a small trained toy world) plugs in.
"""
from guide.lazy import lazy_getattr

_EXPORTS = {
    "AuditNetworks": "networks",
    "load_audit_networks": "networks",
    "Photo": "photo",
    "load_photo": "photo",
    "AuditSubject": "inputs",
    "NotAnUnlearnedCopyError": "inputs",
    "check_unlearned_copy": "inputs",
    "open_subject": "inputs",
    "optimise_latent": "attack",
    "photo_attacks": "attack",
    "leakage_curve": "leakage",
    "unit_directions": "leakage",
    "calibrate_threshold": "threshold",
    "audit_generators": "pipeline",
    "audit_workload": "pipeline",
    "run_audit": "pipeline",
    "write_audit": "pipeline",
    "verdicts": "verdicts",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
