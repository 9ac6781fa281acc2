"""`guide demo`: the whole erase pipeline on a tiny built-in generator with random weights."""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("guide-demo"),
              show_default=True)
@click.option("--iters", type=click.IntRange(1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
def demo(out_dir: Path, iters: int, seed: int, overwrite: bool) -> None:
    """Run erase end to end on a tiny random generator (CPU, about a minute).

    Nothing here is trained: the generator, LPIPS and ArcFace have RANDOM weights, so the
    renders show coloured noise, not faces. The demo shows that every stage runs on this
    machine and what an erase writes: the unlearned generator, before/after renders, grid,
    loss curves, settings and metrics.
    """
    import torch

    import eg3d
    from eg3d import configs
    from guide.commands.erase import summarize
    from guide.config import method_preset
    from guide.erase import Identity, load_networks, run_erase

    click.echo("guide demo: tiny EG3D generator, LPIPS and ArcFace with RANDOM weights (no checkpoints needed).")
    click.echo("It exercises the full pipeline (Random scenario: UFO target, LTU fine-tuning, renders); "
               "the images are not faces.")
    torch.manual_seed(seed)
    G = eg3d.TriPlaneGenerator(**configs.tiny()).eval()
    G.neural_rendering_resolution = 32
    config = method_preset("guide")
    config.seed = seed
    config.ltu.iters = iters
    config.ltu.lr = 1e-3
    networks = load_networks(None, "cpu", random_weights=True)
    result = run_erase(Identity("random", seed), out_dir, G, config, networks, overwrite=overwrite,
                       checkpoint_every=max(1, iters // 2), log=lambda m: click.echo(m, err=True))
    summarize(result)


command = demo
