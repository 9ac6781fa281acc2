"""`guide erase`: make the generator forget one identity."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from guide.commands._options import SEED, FiniteFloat, check_speed_options, checkpoints_option, device_option, speed_options

from guide.errors import GuideError
from guide.limits import MAX_ITERS, MAX_LATENT_BATCH

DEFAULT_GENERATOR = "ffhqrebalanced512-128.pkl"


def erase_config(method, seed, options: dict, overrides=()):
    """(EraseConfig, views) from the command's options and `--set KEY=VALUE` overrides: the keys of
    a batch job file (guide.batch.schema.ERASE_KEYS, e.g. truncation_psi, camera.fov_degrees,
    losses.adj_alpha_min) plus evaluation.views (renders per identity) and evaluation.renders
    (paired | random); one-line errors naming the key."""
    from guide.batch.schema import JobFileError, apply_overrides, erase_config_from
    from guide.config import RENDER_MODES

    raw = {"method": method, "seed": seed, **{k: v for k, v in options.items() if v is not None}}
    raw = apply_overrides(raw, overrides)
    evaluation = raw.pop("evaluation", None) or {}
    if not isinstance(evaluation, dict) or set(evaluation) - {"views", "renders"}:
        raise JobFileError("setting evaluation: only evaluation.views and evaluation.renders apply to guide erase")
    views = evaluation.get("views")
    if views is not None and (isinstance(views, bool) or not isinstance(views, int) or views < 1):
        raise JobFileError(f"setting evaluation.views: expected a positive integer, got {views!r}")
    renders = evaluation.get("renders", "paired")
    if renders not in RENDER_MODES:
        raise JobFileError(f"setting evaluation.renders: expected one of {', '.join(RENDER_MODES)}, "
                           f"got {renders!r}")
    config = erase_config_from(raw)
    config.renders = renders
    return config, views


def _identity(photo: Optional[Path], latent, random_seed, target_index):
    from guide.erase import Identity

    sources = [s for s in (photo, latent, random_seed) if s is not None]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of PHOTO (a file or a folder), --latent or --random-seed")
    if photo is not None and photo.is_dir():
        return Identity("folder", str(photo), 0 if target_index is None else target_index)
    if target_index is not None:
        raise click.UsageError("--target-index picks a photo of a folder: give PHOTO as a folder of photos")
    if photo is not None:
        return Identity("photo", str(photo))
    if latent is not None:
        return Identity("latent", str(latent))
    return Identity("random", int(random_seed))


@click.command()
@click.argument("photo", required=False, type=click.Path(path_type=Path))
@click.option("--target-index", type=click.IntRange(0), default=None,
              help="PHOTO is a folder: erase its photo number K (sorted by name) and keep the others, which "
                   "ID_others then measures (the reference's OOD protocol) [0].")
@click.option("--aligned", is_flag=True, help="The photo(s) are already aligned 512x512 crops: feed them to the "
              "encoder as is (the reference's inputs) instead of detecting and re-aligning.")
@click.option("--inversion", type=click.Choice(["deterministic", "stochastic"]), default="deterministic",
              show_default=True, help="stochastic: GOAE with live DropPath/dropout as the reference runs it "
              "(one draw, seeded by --seed).")
@click.option("--w-avg", "w_avg", type=click.Choice(["file", "mapping"]), default="file", show_default=True,
              help="Mean latent of the inversion and the target: the checkpoints' "
                   "w_avg_ffhqrebalanced512-128.pt (required for photos and latents), or the generator's own "
                   "mapping.w_avg.")
@click.option("--latent", type=click.Path(dir_okay=False, path_type=Path), help="Erase a saved latent (guide invert) instead of a photo.")
@click.option("--random-seed", type=SEED, help="Erase a random identity of the generator (the paper's Random scenario).")
@click.option("--generator", "generator_path", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Source generator: EG3D .pkl or our .json/.safetensors (default: <checkpoints>/{DEFAULT_GENERATOR}).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--method", type=click.Choice(["guide", "baseline"]), default="guide", show_default=True,
              help="guide: extrapolated target + local/adjacency/global losses; baseline: average target, local loss.")
@click.option("--iters", type=click.IntRange(1, MAX_ITERS), default=None, help="Adam steps [1000].")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=None, help="Learning rate [1e-4].")
@click.option("--target-distance", type=FiniteFloat(min=0, min_open=True), default=None, help="UFO distance d [30].")
@click.option("--local-mse", type=FiniteFloat(min=0), help="Local tri-plane MSE weight [1e-2].")
@click.option("--local-lpips", type=FiniteFloat(min=0), help="Local LPIPS weight [1.0].")
@click.option("--local-id", type=FiniteFloat(min=0), help="Local identity-loss weight [0.1].")
@click.option("--adj-mse", type=FiniteFloat(min=0), help="Adjacency MSE weight [1e-2].")
@click.option("--adj-lpips", type=FiniteFloat(min=0), help="Adjacency LPIPS weight [1.0].")
@click.option("--adj-id", type=FiniteFloat(min=0), help="Adjacency identity weight [0.1].")
@click.option("--adj-batch", type=click.IntRange(1, MAX_LATENT_BATCH), help="Adjacency latents per step [2].")
@click.option("--adj-alpha-max", type=FiniteFloat(min=0), help="Adjacency offset α ~ U(0, max) [15].")
@click.option("--global-weight", type=FiniteFloat(min=0), help="Global preservation weight [1.0].")
@click.option("--global-batch", type=click.IntRange(1, MAX_LATENT_BATCH), help="Global preservation latents per step [2].")
@click.option("--eg3d-pivot", is_flag=True, help="Cameras look at EG3D's FFHQ pivot [0,0,0.2] instead of the "
              "reference's effective [0,0,0].")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Any other setting, as in a batch job file (repeatable): e.g. truncation_psi=0.7, "
                   "truncation_cutoff=14, camera.fov_degrees=18.837, camera.pitch_offset=-0.2, "
                   "camera.yaw_range=0.2618, evaluation.views=11, evaluation.renders=random (fresh noise per "
                   "render, as the reference), losses.adj_alpha_min=0, losses.adj_weight=1.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@device_option()
@checkpoints_option("checkpoint_dir")
@click.option("--checkpoint-every", type=click.IntRange(0), default=100, show_default=True,
              help="Save resumable state every N steps (0: only at the end).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run's results in --out (only the files a run "
              "writes are removed; other files stay).")
@click.option("--export-pkl", is_flag=True, help="Also write generator.pkl in EG3D's format (needs a .pkl source).")
@speed_options
@click.option("--random-networks", is_flag=True, hidden=True,
              help="Testing only: LPIPS and ArcFace with random weights instead of the checkpoint files.")
def erase(photo, target_index, aligned, inversion, w_avg, latent, random_seed, generator_path, out_dir, method, iters,
          lr, target_distance, local_mse, local_lpips, local_id, adj_mse, adj_lpips, adj_id, adj_batch,
          adj_alpha_max, global_weight, global_batch, eg3d_pivot, overrides, seed, device, checkpoint_dir,
          checkpoint_every, resume, overwrite, export_pkl, fused_adam, cuda_graph, channels_last, compile_,
          random_networks) -> None:
    """Erase the person in PHOTO (or --latent / --random-seed) from the generator.

    Preprocess and invert the photo (GOAE), pick the UFO target, fine-tune the synthesis
    network (LTU) and write the unlearned generator, before/after renders, loss curves,
    settings and metrics into --out. PHOTO may be a folder: all its photos are inverted in one
    batch, photo --target-index is erased and the others must stay (the reference's OOD protocol).
    """
    from guide.devices import resolve_device
    from guide.erase import check_export_source, cpu_warning, erase_inputs, load_networks, plan_erase_folder, run_erase
    from guide.io import load_any_generator
    from guide.paths import resolve_checkpoint_dir

    identity = _identity(photo, latent, random_seed, target_index)
    if identity.kind in ("photo", "folder") and not Path(identity.value).exists():
        raise GuideError(f"photo not found: {identity.value}")
    losses = dict(local_mse=local_mse, local_lpips=local_lpips, local_id=local_id, adj_mse=adj_mse,
                  adj_lpips=adj_lpips, adj_id=adj_id, adj_batch=adj_batch, adj_alpha_max=adj_alpha_max,
                  global_weight=global_weight, global_batch=global_batch)
    options = dict(iters=iters, lr=lr, target_distance=target_distance, eg3d_pivot=eg3d_pivot or None,
                   losses={k: v for k, v in losses.items() if v is not None} or None, aligned=aligned,
                   inversion=inversion, w_avg=w_avg)
    config, views = erase_config(method, seed, options, overrides)
    for name, value in dict(fused_adam=fused_adam, cuda_graph=cuda_graph, channels_last=channels_last,
                            compile=compile_).items():
        setattr(config.ltu, name, value)
    if identity.kind in ("photo", "folder") and not config.inversion.aligned:
        from guide.inversion import aligned_note

        note = aligned_note(identity.value)
        if note:
            click.echo(note, err=True)
    dev = resolve_device(device)
    check_speed_options(dev, cuda_graph, compile_)
    checkpoint_dir = resolve_checkpoint_dir(checkpoint_dir)
    # every check that needs no loading first: the folder, then each file the run reads
    if generator_path is None:
        from guide.checkpoints import require_checkpoint

        generator_path = require_checkpoint(DEFAULT_GENERATOR, checkpoint_dir)
    elif not generator_path.exists():
        raise GuideError(f"generator file not found: {generator_path}")
    plan_erase_folder(out_dir, overwrite=overwrite, resume=resume, inputs=erase_inputs(identity, generator_path))
    _require_inputs(identity, checkpoint_dir, random_networks)
    if export_pkl:
        check_export_source(generator_path)
    G = load_any_generator(generator_path, device=dev)
    warning = cpu_warning(G, config.ltu.iters, dev)
    if warning:
        click.echo(warning, err=True)
    networks = load_networks(checkpoint_dir, dev, random_weights=random_networks)
    click.echo(f"erasing {identity.describe()} with {config.method} ({config.ltu.iters} steps) on {dev}", err=True)
    result = run_erase(identity, out_dir, G, config, networks, checkpoint_dir=checkpoint_dir,
                       generator_path=generator_path, device=dev, overwrite=overwrite, resume=resume,
                       checkpoint_every=checkpoint_every, export_pkl=export_pkl, views=views,
                       log=lambda m: click.echo(m, err=True))
    summarize(result)


def _require_inputs(identity, checkpoint_dir, random_networks: bool) -> None:
    """One line for a missing photo, latent or checkpoint file, before anything is loaded."""
    from guide.checkpoints import require_checkpoint

    if identity.kind in ("photo", "latent") and not Path(identity.value).is_file():
        raise GuideError(f"{identity.kind} file not found: {identity.value}")
    if identity.kind in ("photo", "folder"):
        from guide.inversion import ENCODER_FILE

        require_checkpoint(ENCODER_FILE, checkpoint_dir)
    if not random_networks:
        from guide.erase import require_network_files

        require_network_files(checkpoint_dir)


def summarize(result) -> None:
    """Print the end-of-run summary."""
    losses = result.final_losses
    click.echo(f"done: {result.steps} steps; final loss {losses.get('loss', float('nan')):.4f} "
               f"(local {losses.get('local', float('nan')):.4f}, adjacency {losses.get('adjacency', float('nan')):.4f}, "
               f"global {losses.get('global', float('nan')):.4f})")
    m = result.metrics
    click.echo(f"erased identity vs target (pixel L1): {m['pixel_l1_before_target']:.3f} before -> "
               f"{m['pixel_l1_after_target']:.3f} after")
    click.echo(f"outputs in {result.out_dir}: generator.safetensors/.json, grid.png, renders/, losses.png, "
               "metrics.json, config.json")


command = erase
