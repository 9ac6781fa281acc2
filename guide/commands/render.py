"""`guide render`: multi-view renders of any generator, to inspect unlearned models."""
from __future__ import annotations

from pathlib import Path

import click

from guide.commands._options import SEED, FiniteFloat, device_option

from guide.errors import GuideError
from guide.limits import MAX_VIEWS


@click.command()
@click.option("--generator", "generator_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="EG3D .pkl, our .json/.safetensors, or an erase output folder's generator.json.")
@click.option("--latent", type=click.Path(dir_okay=False, path_type=Path), help="Latent file (guide invert, or latents.pt of an erase).")
@click.option("--random-seed", type=SEED, help="Render a random identity instead (truncation --psi).")
@click.option("--psi", type=FiniteFloat(), default=1.0, show_default=True,
              help="Truncation for --random-seed.")
@click.option("--views", type=click.IntRange(1, MAX_VIEWS), default=11, show_default=True, help="Yaws in [-π/12, π/12].")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--eg3d-pivot", is_flag=True, help="Look at EG3D's FFHQ pivot [0,0,0.2] instead of [0,0,0].")
@device_option()
def render(generator_path, latent, random_seed, psi, views, out_dir, eg3d_pivot, device) -> None:
    """Render one identity from several viewpoints: view_XX.png and grid.png in --out."""
    import torch

    from guide.devices import resolve_device
    from guide.config import CameraConfig, EraseConfig
    from guide.erase import Identity, identity_latent
    from guide.io import load_any_generator
    from guide.io.atomic import write_bytes_atomic
    from guide.render import grid, png_bytes, render_views, save_images

    if (latent is None) == (random_seed is None):
        raise click.UsageError("give exactly one of --latent or --random-seed")
    if not generator_path.exists():
        raise GuideError(f"generator file not found: {generator_path}")
    from guide.erase import erase_inputs
    from guide.io.folders import refuse_overwriting_inputs

    written = [out_dir / "grid.png"] + [out_dir / f"view_{i:02d}.png" for i in range(views)]
    refuse_overwriting_inputs(written, erase_inputs(Identity("latent", str(latent)) if latent else
                                                    Identity("random", 0), generator_path))
    dev = resolve_device(device)
    G = load_any_generator(generator_path, device=dev)
    config = EraseConfig()
    config.ltu.truncation_psi = psi
    camera = CameraConfig(pivot=(0.0, 0.0, 0.2)) if eg3d_pivot else CameraConfig()
    config.ltu.camera = camera
    identity = Identity("latent", str(latent)) if latent is not None else Identity("random", random_seed)
    with torch.no_grad():
        w = identity_latent(identity, G, config, None, None, dev)
    yaws = torch.linspace(-camera.yaw_range, camera.yaw_range, views).tolist() if views > 1 else [0.0]
    images = render_views(G, w, camera, yaws=yaws)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_images(images, out_dir, "view")
    write_bytes_atomic(out_dir / "grid.png", png_bytes(grid([images], size=256)))
    click.echo(f"rendered {identity.describe()} from {len(yaws)} views -> {out_dir}")


command = render
