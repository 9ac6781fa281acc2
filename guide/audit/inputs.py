"""What an audit starts from: an erase folder, its erased latent, and the two generators, checked.

An erase folder (``guide erase --out``, or a batch identity folder ``DIR/<id>/``) must hold
``config.json`` and ``latents.pt`` (``w_u``); the unlearned generator is the folder's
``generator.json`` (for joint/sequential batches, the batch model that ``config.json`` names
under ``batch.generator``). The source generator is the file ``config.json`` names (its sha256 is
checked), the one given with ``--pretrained``, or -- for a ``built-in`` source -- the tiny
built-in demo generator. Whatever it is, :func:`check_unlearned_copy` must accept the pair: same
architecture and settings, and every tensor that an erase leaves alone (all but
``backbone.synthesis``, the only part LTU trains) bit for bit equal.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import torch

from guide.errors import GuideError
from guide.evaluate.erase_output import EraseOutput, NotAnEraseOutputError

TRAINED_PREFIX = "backbone.synthesis."  # the only part of the generator an erase changes


class NotAnUnlearnedCopyError(GuideError):
    """The 'unlearned' generator was not made from the source generator by an erase."""


@dataclass
class AuditSubject:
    """An erase folder ready to audit."""

    run: EraseOutput
    w_u: torch.Tensor  # [1, num_ws, w_dim]
    G_src: torch.nn.Module
    G_unl: torch.nn.Module
    source: dict  # path (or description) and sha256 of each generator
    notes: List[str] = field(default_factory=list)


def erased_latent(run: EraseOutput, device) -> torch.Tensor:
    """``w_u`` ``[1, num_ws, w_dim]`` from the folder's latents.pt (one-line errors)."""
    if run.optional_file("latents.pt") is None:
        raise NotAnEraseOutputError(f"{run.root} is not a `guide erase` output folder (missing latents.pt)")
    w_u = run.latents().get("w_u")
    if not isinstance(w_u, torch.Tensor) or w_u.ndim != 3 or w_u.shape[0] != 1 or not w_u.is_floating_point():
        raise NotAnEraseOutputError(f"{run.root / 'latents.pt'} holds no erased latent w_u [1, num_ws, w_dim]")
    return w_u.float().to(device)


def unlearned_generator_path(run: EraseOutput) -> Path:
    """The folder's generator.json, else the batch model its config.json names."""
    own = run.generator_path
    if own.is_file():
        return own
    named = (run.config.get("batch") or {}).get("generator")
    if isinstance(named, str) and named:
        path = (run.root / named).resolve()
        if path.is_file():
            return path
        raise NotAnEraseOutputError(f"{run.root}/config.json names the unlearned generator {named}, which is missing")
    raise NotAnEraseOutputError(f"{run.root} is not a `guide erase` output folder "
                                "(missing generator.json + generator.safetensors)")


def _plain(value):
    """JSON fallback: numpy scalars as numbers (a .pkl's kwargs may hold them), anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


def _spec(G) -> dict:
    from guide.io import generator_spec

    spec = generator_spec(G)
    return json.loads(json.dumps({"class": spec.class_name, "args": spec.init_args, "kwargs": spec.init_kwargs,
                                  "rendering": spec.rendering_kwargs,
                                  "neural_rendering_resolution": spec.neural_rendering_resolution}, default=_plain))


def check_unlearned_copy(G_src, G_unl) -> List[str]:
    """Raise :class:`NotAnUnlearnedCopyError` unless ``G_unl`` is ``G_src`` with (at most) its synthesis
    network changed; returns notes (e.g. that nothing changed at all)."""
    try:
        spec_src, spec_unl = _spec(G_src), _spec(G_unl)
    except ValueError as exc:
        raise NotAnUnlearnedCopyError(f"cannot compare the generators' architectures: {exc}") from None
    differing = sorted(k for k in spec_src if spec_src[k] != spec_unl[k])
    if differing:
        raise NotAnUnlearnedCopyError(f"the unlearned generator is not a copy of the source: its "
                                      f"{', '.join(differing)} differ (another architecture or configuration)")
    a, b = G_src.state_dict(), G_unl.state_dict()
    if set(a) != set(b):
        extra = sorted(set(a) ^ set(b))
        raise NotAnUnlearnedCopyError(f"the unlearned generator is not a copy of the source: tensor names differ "
                                      f"({', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''})")
    changed_fixed, changed_trained = [], 0
    for name, value in a.items():
        other = b[name]
        same = value.shape == other.shape and torch.equal(value, other.to(value.device))
        if not same:
            if name.startswith(TRAINED_PREFIX):
                changed_trained += 1
            else:
                changed_fixed.append(name)
    if changed_fixed:
        raise NotAnUnlearnedCopyError(
            f"the unlearned generator is not an unlearned copy of the source: {len(changed_fixed)} tensor(s) an erase "
            f"leaves alone differ, e.g. {changed_fixed[0]} (an erase changes only {TRAINED_PREFIX.rstrip('.')}); "
            "wrong source generator (--pretrained)?")
    if changed_trained == 0:
        return ["the unlearned generator's weights equal the source's: nothing was erased"]
    return []


def _builtin_source(device):
    from guide.batch.resources import builtin_generator

    return builtin_generator("builtin:tiny").to(device), "builtin:tiny (config.json: source 'built-in')"


def open_subject(erase_dir, *, pretrained: Optional[Path] = None, device="cpu", G_src=None) -> AuditSubject:
    """Open and check an erase folder and its two generators (see the module doc). ``G_src``: the
    source generator already loaded by the caller (a batch), checked like any other."""
    from guide.evaluate.pipeline import Generators
    from guide.io.hashing import sha256_file

    run = EraseOutput.open(erase_dir, needs=())
    w_u = erased_latent(run, device)
    unlearned = unlearned_generator_path(run)
    generators = Generators(run, pretrained, unlearned, device=device)
    if G_src is not None:
        source = {"path": str(run.config.get("source_generator")), "sha256": run.source_sha256}
    elif pretrained is None and run.config.get("source_generator") == "built-in":
        G_src, described = _builtin_source(device)
        source = {"path": described, "sha256": None}
    else:
        G_src = generators.pretrained()
        path = Path(generators.described["pretrained"])
        source = {"path": str(path), "sha256": sha256_file(path) if path.is_file() else None}
    G_unl = generators.unlearned()
    notes = check_unlearned_copy(G_src, G_unl)
    if w_u.shape[1:] != (G_src.num_ws, G_src.w_dim):
        raise NotAnEraseOutputError(f"{run.root / 'latents.pt'}: w_u has shape {list(w_u.shape)}, the generator "
                                    f"takes [1, {G_src.num_ws}, {G_src.w_dim}]")
    weights = unlearned.with_suffix(".safetensors")
    record = {"source": source,
              "unlearned": {"path": str(unlearned), "sha256": sha256_file(weights) if weights.is_file() else None}}
    return AuditSubject(run, w_u, G_src.eval().requires_grad_(False), G_unl.eval().requires_grad_(False), record,
                        notes)
