"""One audit, start to finish: inputs -> acceptance level -> photo attacks -> leakage curves ->
verdicts -> audit.json, audit.png, audit_attack.png and the report's Audit section.

:func:`audit_generators` is the method on tensors and modules (no files; any generator and
networks plug in); :func:`run_audit` is `guide audit ERASE_DIR`: it opens and checks the folder,
loads the photo and the retained identities, runs the method and writes the files.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import numpy as np
import torch

import guide
from guide.audit.attack import photo_attacks
from guide.audit.leakage import leakage_curve, mean_curve, seeded_generator, unit_directions
from guide.audit.networks import AuditNetworks
from guide.audit.photo import Photo
from guide.audit.scoring import Embedder
from guide.audit.threshold import calibrate_threshold, given_threshold
from guide.audit.verdicts import verdicts
from guide.config import AuditConfig, CameraConfig
from guide.errors import GuideError

AUDIT_JSON = "audit.json"
AUDIT_PNG = "audit.png"
ATTACK_PNG = "audit_attack.png"
TRAINED_RADIUS = 15.0  # the adjacency loss's default α range, when the erasure's config does not say

# independent random streams of one audit, all from AuditConfig.seed
STREAM_IMPOSTORS, STREAM_TARGET_DIRECTIONS, STREAM_RETAINED_DIRECTIONS = 1, 2, 3


class AuditExistsError(GuideError):
    """The folder already holds an audit."""


@dataclass
class AuditResult:
    """The audit.json record, and the renders and photo the figures show."""

    record: dict
    renders: Dict[str, torch.Tensor] = field(default_factory=dict)
    photo: Optional[np.ndarray] = None


def _level_label(threshold: Optional[dict]) -> str:
    if threshold is None:
        return ""
    if threshold["source"] == "user":
        return f"acceptance level {threshold['value']:.3f} (given by the user)"
    return (f"acceptance level {threshold['value']:.3f}: accepts {threshold['false_accept_rate']:.2%} of "
            f"{threshold['pairs']} impostor pairs (calibrated here)")


def audit_generators(G_src, G_unl, w_u: torch.Tensor, *, camera: CameraConfig, networks: AuditNetworks,
                     config: AuditConfig, w_avg: torch.Tensor, photo: Optional[Photo] = None,
                     photo_skipped: str = "no photo", retained: Optional[torch.Tensor] = None,
                     retained_note: str = "", trained_radius: Optional[float] = TRAINED_RADIUS,
                     progress: bool = False, log: Callable[[str], None] = lambda m: None) -> AuditResult:
    """The four measurements of an audit (see :mod:`guide.audit`) on two generators; no files.
    ``retained``: latents ``[K, num_ws, w_dim]`` of the identities that must stay (K may be 0)."""
    from guide.cameras import view_yaws

    yaws = view_yaws(config.views, camera.yaw_range)
    embed = Embedder(networks.scorer)
    generators = {"unlearned": G_unl, "source": G_src}
    retained = retained if retained is not None else w_u.new_zeros((0, *w_u.shape[1:]))
    record: dict = {"settings": config.to_dict(), "camera": dataclasses.asdict(camera), "yaws": yaws,
                    "networks": networks.note, "random_networks": bool(networks.random_weights)}
    seconds: Dict[str, float] = {}

    start = time.perf_counter()
    record["threshold"] = _acceptance_level(G_src, embed, camera, config, w_u.device, log)
    seconds["threshold"] = time.perf_counter() - start

    start = time.perf_counter()
    renders: Dict[str, torch.Tensor] = {}
    if photo is None:
        record.update(photo=None, reinversion={"skipped": photo_skipped}, attack={"skipped": photo_skipped})
    else:
        log("audit: re-inversion and optimisation attack")
        reinversion, attack, renders = photo_attacks(generators, photo, w_avg, camera, yaws, networks,
                                                     config.attack, embed, progress=progress)
        if photo.w_inverted is not None:
            reinversion["w_distance_to_erased_latent"] = float((photo.w_inverted.to(w_u.device) - w_u).norm())
        record.update(photo=photo.record(), reinversion=reinversion, attack=attack)
    seconds["photo_attacks"] = time.perf_counter() - start

    start = time.perf_counter()
    record["leakage"] = {**_leakage(generators, G_src, w_u, retained, camera, yaws, embed, config, progress),
                         "trained_radius": trained_radius}
    record["leakage"]["retained"]["identities"] = retained_note
    seconds["leakage"] = time.perf_counter() - start

    record["scoring"] = {"images": embed.images, "images_without_detected_face": embed.missed,
                         "no_face_policy": getattr(networks.scorer, "no_face", None)}
    record["verdicts"] = verdicts(record)
    record["warnings"] = _warnings(record)
    record["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return AuditResult(record, renders, photo.image if photo is not None else None)


def _acceptance_level(G_src, embed: Embedder, camera: CameraConfig, config: AuditConfig, device,
                      log: Callable[[str], None]) -> Optional[dict]:
    """The user's level, else one calibrated on impostors (None with fewer than 2 impostors)."""
    given = given_threshold(config.threshold)
    if given is not None or config.impostors < 2:
        return given
    log(f"audit: calibrating the acceptance level on {config.impostors} random identities")
    return calibrate_threshold(G_src, embed, camera, config.impostors, config.false_accept_rate,
                               seeded_generator(config.seed, STREAM_IMPOSTORS), device=device,
                               chunk=config.leakage.chunk)


def _leakage(generators: dict, G_src, w_u: torch.Tensor, retained: torch.Tensor, camera: CameraConfig,
             yaws: List[float], embed: Embedder, config: AuditConfig, progress: bool) -> dict:
    """The leakage curve around w_u and around each retained identity (each with its own directions)."""
    from tqdm import tqdm

    lk = config.leakage

    def curve(w: torch.Tensor, stream: tuple) -> dict:
        directions = unit_directions(G_src, w, lk.directions, lk.kind, camera, seeded_generator(config.seed, *stream))
        return leakage_curve(generators, G_src, w, directions, lk.radii, camera, yaws, embed, chunk=lk.chunk,
                             progress=bar.update)

    with tqdm(total=len(lk.radii) * len(generators) * (1 + retained.shape[0]), desc="leakage curves", unit="point",
              disable=not progress, dynamic_ncols=True) as bar:
        target = curve(w_u, (STREAM_TARGET_DIRECTIONS,))
        per_identity = [curve(retained[k:k + 1], (STREAM_RETAINED_DIRECTIONS, k)) for k in range(retained.shape[0])]
    return {"radii": [float(r) for r in lk.radii], "directions": lk.directions, "kind": lk.kind, "target": target,
            "retained": {"count": len(per_identity),
                         "unlearned": mean_curve([c["unlearned"] for c in per_identity], "mean"),
                         "source": mean_curve([c["source"] for c in per_identity], "mean"),
                         "per_identity": per_identity}}


def _warnings(record: dict) -> List[str]:
    out = []
    if record.get("random_networks"):
        out.append("RANDOM-weight networks (test/demo mode): the numbers carry no meaning.")
    missed = record["scoring"]["images_without_detected_face"]
    if missed:
        out.append(f"{missed} of {record['scoring']['images']} images had no face the detector could find; policy "
                   f"'{record['scoring']['no_face_policy']}' was applied (see guide.evaluate.identity).")
    if (record.get("threshold") or {}).get("caution"):
        out.append(record["threshold"]["caution"])
    if record.get("threshold") is None:
        out.append("No acceptance level (no --threshold and fewer than 2 impostors): verdicts give ratios only.")
    return out


# ----------------------------------------------------------------------------------- files


def write_audit(root: Path, result: AuditResult) -> List[Path]:
    """audit.png, audit_attack.png (when there was a photo), audit.json, then report.html (with the
    Audit section), each atomically; returns the paths written."""
    from guide.audit.plot import attack_grid, leakage_png, leakage_series
    from guide.evaluate.erase_output import EraseOutput
    from guide.evaluate.report import write_report
    from guide.io.atomic import write_bytes_atomic, write_text_atomic
    from guide.render import png_bytes

    root = Path(root)
    record = result.record
    leakage = record["leakage"]
    threshold = record.get("threshold")
    written = [root / AUDIT_PNG]
    write_bytes_atomic(written[0], leakage_png(leakage["radii"], leakage_series(leakage),
                                               threshold["value"] if threshold else None, _level_label(threshold),
                                               leakage.get("trained_radius")))
    picture = attack_grid(result.photo, result.renders) if result.photo is not None else None
    if picture is not None:
        written.append(root / ATTACK_PNG)
        write_bytes_atomic(written[-1], png_bytes(picture))
    written.append(root / AUDIT_JSON)
    write_text_atomic(written[-1], json.dumps(record, indent=2, default=str, allow_nan=False) + "\n")
    written.append(write_report(EraseOutput.open(root, needs=())))
    return written


def _checkpoint_hashes(checkpoint_dir, names) -> Dict[str, Optional[str]]:
    from guide.io.hashing import sha256_file

    if checkpoint_dir is None:
        return {}
    paths = {name: Path(checkpoint_dir) / name for name in names}
    return {name: sha256_file(p) if p.is_file() else None for name, p in paths.items()}


def _trained_radius(config: dict) -> Optional[float]:
    losses = ((config.get("erase") or {}).get("ltu") or {}).get("losses") or {}
    if losses.get("adjacency") is False:
        return None
    return float(losses.get("adj_alpha_max", TRAINED_RADIUS))


def check_audit_folder(erase_dir, overwrite: bool = False) -> None:
    """The cheap checks of an erase folder before any slow loading: settings and erased latent
    readable, no earlier audit (unless ``overwrite``). One-line errors."""
    from guide.audit.inputs import erased_latent
    from guide.evaluate.erase_output import EraseOutput

    run = EraseOutput.open(erase_dir, needs=())
    erased_latent(run, "cpu")
    if (run.root / AUDIT_JSON).exists() and not overwrite:
        raise AuditExistsError(f"{run.root / AUDIT_JSON} exists (use --overwrite to audit again)")


def run_audit(erase_dir, networks: Union[AuditNetworks, Callable[[], AuditNetworks]], config: AuditConfig = AuditConfig(), *,
              pretrained: Optional[Path] = None, photo: Optional[Path] = None, checkpoint_dir=None,
              others=None, retained: Optional[torch.Tensor] = None, retained_note: Optional[str] = None,
              device="cpu", overwrite: bool = False, photo_models=None, G_src=None, progress: bool = True,
              log: Callable[[str], None] = print) -> dict:
    """`guide audit ERASE_DIR`: check the inputs, audit, write the files; returns the record.

    ``networks``: the :class:`AuditNetworks`, or a function that builds them (called once the
    inputs passed their checks, so bad input fails before slow loading). Retained identities: ``retained`` latents ``[K, num_ws, w_dim]`` (described by
    ``retained_note``), else ``others`` (:class:`guide.evaluate.identity.Others`; default: 4 random
    ones, as ID_others). ``G_src``: the source generator, already loaded (batches); else found as
    :func:`guide.audit.inputs.open_subject` says. ``photo``: a photo to attack with instead of
    the one named in config.json."""
    from guide.audit.inputs import open_subject
    from guide.audit.photo import load_photo, photo_of
    from guide.erase import W_AVG_FILE, load_w_avg
    from guide.evaluate.identity import CURRICULARFACE_FILE, Others, other_latents
    from guide.inversion import ENCODER_FILE

    root = Path(erase_dir)
    check_audit_folder(root, overwrite)
    device = torch.device(device)
    subject = open_subject(root, pretrained=pretrained, device=device, G_src=G_src)
    run = subject.run
    camera = run.camera
    for note in subject.notes:
        log(f"audit: note: {note}")
    # the mean latent the erasure itself used (config.json: erase.inversion.w_avg), so the
    # re-inversion adds the same offset as the erasure's inversion did
    inversion = (run.config.get("erase") or {}).get("inversion") or {}
    w_avg_choice = inversion.get("w_avg", "file")
    w_avg, w_avg_source = load_w_avg(subject.G_src, checkpoint_dir, device, w_avg_choice)
    path = photo_of(run.config, photo)
    kind = (run.config.get("identity") or {}).get("kind", "?")
    loaded_photo, skipped = None, ""
    if path is None:
        made_from = {"random": "a random seed", "latent": "a latent"}.get(kind, kind)
        skipped = f"no photo: the erasure was made from {made_from} (give the person's photo with --photo)"
        log(f"audit: {skipped}")
    else:
        # the erasure's own photo, already aligned when it was erased with --aligned: not re-aligned
        aligned = photo is None and bool(inversion.get("aligned"))
        loaded_photo = load_photo(path, camera, w_avg, checkpoint_dir, device, photo_models, aligned=aligned)
    if retained is None:
        others = others if others is not None else Others()
        retained = other_latents(others, subject.G_src, camera, device, checkpoint_dir)
        retained_note = others.describe()

    if callable(networks):
        networks = networks()
    result = audit_generators(subject.G_src, subject.G_unl, subject.w_u, camera=camera, networks=networks,
                              config=config, w_avg=w_avg, photo=loaded_photo, photo_skipped=skipped,
                              retained=retained.to(device), retained_note=retained_note or "",
                              trained_radius=_trained_radius(run.config), progress=progress, log=log)
    record = {"guide_version": guide.__version__,
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "erase_dir": str(root), "identity": run.config.get("identity"), "device": str(device),
              "generators": subject.source, "w_avg": w_avg_source,
              "checkpoints": _checkpoint_hashes(checkpoint_dir, (ENCODER_FILE, W_AVG_FILE, CURRICULARFACE_FILE,
                                                                 "model_ir_se50.pth", "vgg16-397923af.pth")),
              "notes": subject.notes, **result.record}
    result.record = record
    write_audit(root, result)
    return record


# ---------------------------------------------------------------------------- workload


def audit_workload(config: AuditConfig, *, retained: int = 4, photo: bool = True, reinverted: bool = True) -> dict:
    """How much work one audit is: optimisation steps (each one render with backward and the two
    loss networks), renders without gradient, and images scored -- for runtime estimates."""
    views, lk = config.views, config.leakage
    starts = [s for s in config.attack.starts if reinverted or s != "inverted"] if photo else []
    impostors = config.impostors if config.threshold is None and config.impostors >= 2 else 0
    moved = len([r for r in lk.radii if float(r) != 0.0])
    still = len(lk.radii) - moved
    per_identity = views + 2 * (still + moved * lk.directions) * views  # reference + both generators' points
    photo_renders = (2 * views * (1 if reinverted else 0) + 2 * len(starts) * views) if photo else 0
    renders = impostors + photo_renders + (1 + retained) * per_identity
    return {"attack_steps": 2 * len(starts) * config.attack.steps, "renders": renders,
            "scored_images": renders + (1 if photo else 0)}
