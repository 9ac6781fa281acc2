"""`guide erase`: make the generator forget one identity."""
from __future__ import annotations

from pathlib import Path

import click

from guide.commands._options import SEED, FiniteFloat, checkpoints_option

from guide.errors import GuideError
from guide.limits import MAX_ITERS, MAX_LATENT_BATCH

DEFAULT_GENERATOR = "ffhqrebalanced512-128.pkl"


def _config(method, iters, lr, target_distance, weights: dict, seed, eg3d_pivot):
    from guide.config import method_preset

    config = method_preset(method)
    config.seed = seed
    if iters is not None:
        config.ltu.iters = iters
    if lr is not None:
        config.ltu.lr = lr
    if target_distance is not None:
        config.target.distance = target_distance
    for name, value in weights.items():
        if value is not None:
            setattr(config.ltu.losses, name, value)
    if eg3d_pivot:
        config.ltu.camera.pivot = (0.0, 0.0, 0.2)
    return config


@click.command()
@click.argument("photo", required=False, type=click.Path(dir_okay=False, path_type=Path))
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
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@checkpoints_option("checkpoint_dir")
@click.option("--checkpoint-every", type=click.IntRange(0), default=100, show_default=True,
              help="Save resumable state every N steps (0: only at the end).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run's results in --out (only the files a run "
              "writes are removed; other files stay).")
@click.option("--export-pkl", is_flag=True, help="Also write generator.pkl in EG3D's format (needs a .pkl source).")
@click.option("--random-networks", is_flag=True, hidden=True,
              help="Testing only: LPIPS and ArcFace with random weights instead of the checkpoint files.")
def erase(photo, latent, random_seed, generator_path, out_dir, method, iters, lr, target_distance, local_mse,
          local_lpips, local_id, adj_mse, adj_lpips, adj_id, adj_batch, adj_alpha_max, global_weight,
          global_batch, eg3d_pivot, seed, device, checkpoint_dir, checkpoint_every, resume, overwrite,
          export_pkl, random_networks) -> None:
    """Erase the person in PHOTO (or --latent / --random-seed) from the generator.

    Preprocess and invert the photo (GOAE), pick the UFO target, fine-tune the synthesis
    network (LTU) and write the unlearned generator, before/after renders, loss curves,
    settings and metrics into --out.
    """
    from guide.devices import resolve_device
    from guide.erase import Identity, check_export_source, erase_inputs, load_networks, plan_erase_folder, run_erase
    from guide.io import load_any_generator
    from guide.paths import resolve_checkpoint_dir

    sources = [s for s in (photo, latent, random_seed) if s is not None]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of PHOTO, --latent or --random-seed")
    if photo is not None:
        identity = Identity("photo", str(photo))
    elif latent is not None:
        identity = Identity("latent", str(latent))
    else:
        identity = Identity("random", int(random_seed))
    weights = dict(local_mse=local_mse, local_lpips=local_lpips, local_id=local_id, adj_mse=adj_mse,
                   adj_lpips=adj_lpips, adj_id=adj_id, adj_batch=adj_batch, adj_alpha_max=adj_alpha_max,
                   global_weight=global_weight, global_batch=global_batch)
    config = _config(method, iters, lr, target_distance, weights, seed, eg3d_pivot)
    dev = resolve_device(device)
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
    networks = load_networks(checkpoint_dir, dev, random_weights=random_networks)
    click.echo(f"erasing {identity.describe()} with {method} ({config.ltu.iters} steps) on {dev}", err=True)
    result = run_erase(identity, out_dir, G, config, networks, checkpoint_dir=checkpoint_dir,
                       generator_path=generator_path, device=dev, overwrite=overwrite, resume=resume,
                       checkpoint_every=checkpoint_every, export_pkl=export_pkl,
                       log=lambda m: click.echo(m, err=True))
    summarize(result)


def _require_inputs(identity, checkpoint_dir, random_networks: bool) -> None:
    """One line for a missing photo, latent or checkpoint file, before anything is loaded."""
    from guide.checkpoints import require_checkpoint

    if identity.kind in ("photo", "latent") and not Path(identity.value).is_file():
        raise GuideError(f"{identity.kind} file not found: {identity.value}")
    if identity.kind == "photo":
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
