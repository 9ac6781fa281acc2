"""`guide demo`: erase a toy identity with GUIDE in the toy world shipped with the package (CPU)."""
from __future__ import annotations

import time
from pathlib import Path

import click

DEMO_VIEWS = 7
DEMO_OTHERS = 2  # other identities shown in the grid (ID_others is measured over DEMO_EVAL_OTHERS)
DEMO_EVAL_OTHERS = 6
DEMO_FID_SAMPLES = 64
DEMO_IDENTITY = 3  # the random toy head erased by default (one the toy world erases cleanly; also the effect tests')


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("guide-demo"),
              show_default=True)
@click.option("--iters", type=click.IntRange(1), default=None, help="LTU iterations [default: the toy preset's 60]")
@click.option("--seed", type=int, default=DEMO_IDENTITY, show_default=True,
              help="Which random toy identity is erased (3: a head the toy world erases cleanly; the README "
                   "gives the numbers of others).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
def demo(out_dir: Path, iters: int, seed: int, overwrite: bool) -> None:
    """Erase one head from the toy world with GUIDE (CPU, about a minute).

    The toy world (guide.toy) is a small EG3D generator trained to render procedural 3D heads,
    with two small identity networks standing in for ArcFace (the loss) and CurricularFace (the ID
    metric). grid.png shows the erased head before / after / its target, then other heads before /
    after; metrics.json and report.html carry the toy ID, ID_others and FID_pre. It shows the method
    working; it says nothing about quality on real faces.
    """
    import torch

    from guide.commands.erase import summarize
    from guide.erase import Identity, run_erase
    from guide.evaluate.identity import Others
    from guide.evaluate.pipeline import eval_all
    from guide.io.atomic import write_bytes_atomic
    from guide.render import png_bytes
    from guide.toy.grid import toy_grid
    from guide.toy.world import toy_erase_config, toy_world

    start = time.time()
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    click.echo("guide demo: GUIDE erases one head from the toy world (procedural 3D heads, small trained networks).")
    world = toy_world("cpu")
    config = toy_erase_config("guide", seed=seed) if iters is None else toy_erase_config("guide", iters, seed)
    torch.manual_seed(seed)
    result = run_erase(Identity("random", seed), out_dir, world.G, config, world.networks,
                       generator_path=world.generator_path, overwrite=overwrite, views=DEMO_VIEWS,
                       checkpoint_every=config.ltu.iters, metrics_note=False, log=log)
    summarize(result)
    metrics, report = eval_all(out_dir, world.eval_networks(), use_real=False, num=DEMO_FID_SAMPLES, batch=16,
                               others=Others("random", count=DEMO_EVAL_OTHERS), progress=False)
    latents = torch.load(out_dir / "latents.pt", weights_only=True)
    from guide.io import load_generator

    G = load_generator(out_dir / "generator.json")
    picture = toy_grid(world.G, G, latents["w_u"], latents["w_t"], config.ltu.camera, DEMO_VIEWS, DEMO_OTHERS)
    write_bytes_atomic(out_dir / "grid.png", png_bytes(picture))
    from guide.evaluate.erase_output import EraseOutput
    from guide.evaluate.report import write_report

    write_report(EraseOutput.open(out_dir), metrics)
    click.echo(f"toy ID {metrics['ID']:.3f} (erased head, before vs after; 1 = unchanged), ID_others "
               f"{metrics['ID_others']:.3f} (other heads), toy FID_pre {metrics['FID_pre']:.2f}")
    click.echo(f"open {out_dir / 'grid.png'} and {report} ({time.time() - start:.0f} s)")


command = demo
