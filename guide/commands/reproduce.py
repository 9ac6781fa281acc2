"""`guide reproduce`: rerun the reference's experiments and compare with the published numbers."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from guide.commands._options import checkpoints_option, device_option
from guide.errors import GuideError

DEMO_DEFAULTS = {"iters": 10, "fid_samples": 16, "views": 3}


def _methods(ctx, param, value: str):
    names = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in names if m not in ("baseline", "guide")]
    if not names or bad:
        raise click.BadParameter("expected a comma-separated list of baseline and/or guide")
    return tuple(dict.fromkeys(names))


@click.group("reproduce")
def reproduce_group() -> None:
    """Rerun the reference's experiments with its protocol and print our numbers beside the published ones."""


@reproduce_group.command("ood")
@click.argument("photo_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: table.md, report.html and one erase folder per method.")
@click.option("--demo", is_flag=True, help=f"Run the same code in the toy world (guide.toy: trained toy generator "
              f"and networks, a random GOAE) and its own photos (no checkpoints; CPU, a few minutes; defaults {DEMO_DEFAULTS}).")
@click.option("--target-index", type=click.IntRange(0), default=0, show_default=True,
              help="Which photo of PHOTO_DIR (sorted by name) is erased.")
@click.option("--methods", default="baseline,guide", show_default=True, callback=_methods,
              help="Comma-separated: baseline, guide.")
@click.option("--iters", type=click.IntRange(1), default=None, help="Adam steps per erase [1000].")
@click.option("--fid-samples", type=click.IntRange(2), default=None, help="FID samples per generator [5000].")
@click.option("--fid-batch", type=click.IntRange(1), default=8, show_default=True, help="Images per FID batch.")
@click.option("--views", type=click.IntRange(1), default=None, help="Renders per identity for ID [11].")
@click.option("--inversion", type=click.Choice(["stochastic", "deterministic"]), default="stochastic",
              show_default=True, help="stochastic: GOAE's live dropout as the reference runs it (seeded by --seed).")
@click.option("--renders", type=click.Choice(["random", "paired"]), default="random", show_default=True,
              help="Before/after renders for ID: random noise as the reference renders them, or paired "
                   "(constant noise, pixel-comparable).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--real", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Real Inception features for ΔFID_real [<checkpoints>/ffhq_real_feat.npy].")
@device_option()
@checkpoints_option()
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
@click.option("--resume", is_flag=True, help="Continue an interrupted reproduction in --out.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def reproduce_ood(photo_dir: Optional[Path], out_dir: Path, demo: bool, target_index: int, methods, iters,
                  fid_samples, fid_batch, views, inversion, renders, seed, real, device, checkpoints, overwrite, resume,
                  no_progress) -> None:
    """The reference's OOD experiment on PHOTO_DIR (its five aligned CelebA-HQ sample photos):
    invert the folder with GOAE (aligned inputs, one batch), erase photo --target-index with the
    baseline and with GUIDE (paper settings), measure ID, ID_others (the other photos), FID_pre
    and ΔFID_real (paper protocol), and write DIR/table.md and DIR/report.html with our values,
    the published ones and the differences.

    Needs in the checkpoints folder: ffhqrebalanced512-128.pkl, w_avg_ffhqrebalanced512-128.pt,
    encoder_FFHQ.pt, vgg16-397923af.pth, model_ir_se50.pth, CurricularFace_Backbone.pth,
    pt_inception-2015-12-05-6726825d.pth and ffhq_real_feat.npy (or --real).
    """
    from guide.devices import resolve_device
    from guide.erase import cpu_warning
    from guide.paths import resolve_checkpoint_dir
    from guide.reproduce import OODSettings, check_out_dir, checkpoint_world, demo_world, run_ood

    if demo == (photo_dir is not None):
        raise click.UsageError("give PHOTO_DIR, or --demo (which makes its own photos)")
    if photo_dir is not None and not photo_dir.is_dir():
        raise GuideError(f"photo folder not found: {photo_dir}")
    defaults = DEMO_DEFAULTS if demo else {}
    settings = OODSettings(photo_dir=photo_dir, out_dir=out_dir, target_index=target_index, methods=methods,
                           iters=iters if iters is not None else defaults.get("iters"),
                           fid_samples=fid_samples or defaults.get("fid_samples", 5000), fid_batch=fid_batch,
                           views=views or defaults.get("views", 11), seed=seed, inversion=inversion, renders=renders,
                           real=real,
                           overwrite=overwrite, resume=resume)
    check_out_dir(settings)
    dev = resolve_device(device)
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if demo:
        world = demo_world(out_dir / "demo", dev)
        settings.photo_dir = out_dir / "demo" / "photos"
    else:
        world = checkpoint_world(resolve_checkpoint_dir(checkpoints), dev, real)
        warning = cpu_warning(world.generator, settings.iters or 1000, dev)
        if warning:
            log(warning + f", for each of {len(methods)} method(s)")
    log(f"reproducing the OOD experiment: {world.description}")
    results = run_ood(settings, world, progress=not no_progress, log=log)
    click.echo((out_dir / "table.md").read_text(encoding="utf-8"))
    click.echo(f"wrote {out_dir / 'table.md'} and {out_dir / 'report.html'}", err=True)
    if not results:
        raise GuideError("no method was run")


command = reproduce_group
