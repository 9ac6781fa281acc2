"""`guide audit`: try to get the erased person back, and report how far the erasure holds."""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import click

from guide.commands._options import checkpoints_option, device_option
from guide.config import AttackConfig, AuditConfig, LeakageConfig
from guide.errors import GuideError

_ANY = click.Path(path_type=Path)
_FILE = click.Path(dir_okay=False, path_type=Path)


def _numbers(text: str) -> Tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise GuideError(f"--radii {text!r}: expected comma-separated numbers such as 0,2.5,5,10") from None
    if not values or any(v < 0 for v in values) or list(values) != sorted(values):
        raise GuideError(f"--radii {text!r}: expected non-negative radii in increasing order")
    return values


def _config(seed, views, steps, lr, attack_lpips, attack_id, starts, radii, directions, direction_kind,
            impostors, far, threshold) -> AuditConfig:
    attack = AttackConfig(steps=steps, lr=lr, lpips=attack_lpips, id=attack_id,
                          starts=tuple(starts) or AttackConfig.starts)
    leakage = LeakageConfig(radii=_numbers(radii), directions=directions, kind=direction_kind)
    return AuditConfig(seed=seed, views=views, attack=attack, leakage=leakage, impostors=impostors,
                       false_accept_rate=far, threshold=threshold)


def _others(latents, count, seed):
    from guide.evaluate.identity import OTHERS_SEED, Others

    if latents:
        return Others("latents", paths=tuple(str(p) for p in latents))
    if count == 0:
        return Others("none", count=0)
    return Others("random", count=count, seed=OTHERS_SEED if seed is None else seed)


_DEFAULTS = AuditConfig()


def _uses_toy_networks(choice: str, erase_dir) -> bool:
    """--networks toy, or auto and the erasure's source generator is the shipped toy generator."""
    if choice != "auto":
        return choice == "toy"
    from guide.io.documents import load_json
    from guide.toy.world import is_toy_generator

    try:
        settings = load_json(Path(erase_dir) / "config.json")
    except GuideError:  # run_audit reports a missing or damaged config.json in one line
        return False
    return isinstance(settings, dict) and is_toy_generator(settings.get("source_generator_sha256"))


@click.command("audit")
@click.argument("erase_dir", type=_ANY)
@click.option("--pretrained", type=_ANY, default=None,
              help="Source generator (.pkl or ours; default: the one named in ERASE_DIR/config.json).")
@click.option("--photo", type=_FILE, default=None,
              help="Attack with this photo (default: the erased photo named in config.json; erasures from a latent "
                   "or a random seed have none, and the photo attacks are skipped).")
@click.option("--steps", type=click.IntRange(1), default=_DEFAULTS.attack.steps, show_default=True,
              help="Adam steps of the optimisation attack.")
@click.option("--attack-lr", "lr", type=click.FloatRange(min=0, min_open=True), default=_DEFAULTS.attack.lr,
              show_default=True, help="Learning rate of the attack on the W+ latent.")
@click.option("--attack-lpips", type=click.FloatRange(min=0), default=_DEFAULTS.attack.lpips, show_default=True,
              help="Weight of LPIPS between the render and the photo.")
@click.option("--attack-id", type=click.FloatRange(min=0), default=_DEFAULTS.attack.id, show_default=True,
              help="Weight of the ArcFace identity loss.")
@click.option("--start", "starts", type=click.Choice(["inverted", "average"]), multiple=True,
              help="Where the attack starts: the re-inverted latent, w_avg (repeatable) [both].")
@click.option("--radii", default=",".join(f"{r:g}" for r in _DEFAULTS.leakage.radii), show_default=True,
              help="Radii of the leakage curves (W+ norm, as the adjacency loss's α).")
@click.option("--directions", type=click.IntRange(1), default=_DEFAULTS.leakage.directions, show_default=True,
              help="Random unit directions per radius.")
@click.option("--direction-kind", type=click.Choice(["mapped", "isotropic"]), default=_DEFAULTS.leakage.kind,
              show_default=True, help="mapped: towards random mapped latents (as the adjacency loss); isotropic: "
                                      "Gaussian in W+.")
@click.option("--views", type=click.IntRange(1), default=_DEFAULTS.views, show_default=True,
              help="Evaluation yaws rendered per latent.")
@click.option("--others-random", type=click.IntRange(0), default=4, show_default=True,
              help="Retained identities for the neighbours curve: this many random ones (as ID_others).")
@click.option("--others-latents", type=_FILE, multiple=True, help="Retained identities from latents in these .pt "
              "files (repeatable).")
@click.option("--others-seed", type=int, default=None, help="Seed of the random retained identities.")
@click.option("--impostors", type=click.IntRange(0), default=_DEFAULTS.impostors, show_default=True,
              help="Random identities whose pairwise similarities calibrate the acceptance level (0: none).")
@click.option("--far", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=_DEFAULTS.false_accept_rate, show_default=True,
              help="False accept rate of the calibrated acceptance level.")
@click.option("--threshold", type=float, default=None,
              help="Use this acceptance level (e.g. your verifier's operating point) instead of calibrating one.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of directions and impostors.")
@click.option("--no-face", type=click.Choice(["fixed", "skip", "error"]), default="fixed", show_default=True,
              help="A render without a detected face: align it from fixed FFHQ landmarks, skip it, or stop.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier audit of ERASE_DIR.")
@device_option()
@checkpoints_option()
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--networks", "networks_choice", type=click.Choice(["auto", "checkpoints", "toy"]), default="auto",
              show_default=True,
              help="Scorer and attack networks: from the checkpoints folder, or the toy world's (guide demo); "
                   "auto: the toy world's when ERASE_DIR erased the toy generator.")
@click.option("--random-networks", is_flag=True, hidden=True,
              help="Random-weight scorer and attack networks (tests/demos; meaningless numbers).")
def audit(erase_dir, pretrained, photo, steps, lr, attack_lpips, attack_id, starts, radii, directions,
          direction_kind, views, others_random, others_latents, others_seed, impostors, far, threshold, seed,
          no_face, overwrite, device, checkpoints, no_progress, networks_choice, random_networks) -> None:
    """Try to get the person erased in ERASE_DIR back, and report how far the erasure holds.

    Through the unlearned generator and, as the ceiling, the source generator: (1) the photo
    re-inverted with GOAE, (2) an optimisation attack on a W+ latent (LPIPS + identity loss to
    the aligned photo at its camera), (3) the leakage curve around w_u, (4) the same curve
    around retained identities. Writes ERASE_DIR/audit.json, audit.png, audit_attack.png and an
    Audit section in report.html. See README "Auditing an erasure" for what each number means.
    """
    from guide.audit.networks import load_audit_networks
    from guide.audit.pipeline import run_audit
    from guide.devices import resolve_device
    from guide.paths import resolve_checkpoint_dir

    config = _config(seed, views, steps, lr, attack_lpips, attack_id, starts, radii, directions, direction_kind,
                     impostors, far, threshold)
    dev = resolve_device(device)
    checkpoint_dir = resolve_checkpoint_dir(checkpoints)
    def networks():  # loaded once the folder and the generators passed their checks
        if not random_networks and _uses_toy_networks(networks_choice, erase_dir):
            from guide.toy.world import toy_world

            return toy_world(dev).audit_networks()
        return load_audit_networks(checkpoint_dir, dev, random_weights=random_networks, no_face=no_face)

    record = run_audit(erase_dir, networks, config, pretrained=pretrained, photo=photo, checkpoint_dir=checkpoint_dir,
                       others=_others(others_latents, others_random, others_seed), device=dev, overwrite=overwrite,
                       progress=not no_progress, log=lambda m: click.echo(m, err=True))
    for line in record["verdicts"].values():
        click.echo(line)
    for warning in record["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {Path(erase_dir) / 'audit.json'}, audit.png and report.html", err=True)


command = audit
