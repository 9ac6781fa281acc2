"""`guide batch-bench`: how a joint erase scales with the number of identities."""
from __future__ import annotations

from pathlib import Path

import click

from guide.commands._options import device_option



def _counts(ctx, param, value: str):
    try:
        counts = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter("expected comma-separated integers, e.g. 1,8,64,200") from None
    if not counts or min(counts) < 1:
        raise click.BadParameter("expected positive integers, e.g. 1,8,64,200")
    return counts


@click.command("batch-bench")
@click.option("--counts", default="1,8,64,200", show_default=True, callback=_counts,
              help="Numbers of identities K to measure.")
@click.option("--steps", type=click.IntRange(1), default=1, show_default=True, help="Timed steps per K (median).")
@click.option("--warmup", type=click.IntRange(0), default=0, show_default=True)
@device_option()
@click.option("--nrr", type=click.IntRange(8), default=16, show_default=True, help="Neural rendering resolution.")
@click.option("--identity-chunk", type=click.IntRange(1), default=4, show_default=True,
              help="Identities per forward pass (memory grows with it, not with K).")
@click.option("--exact-max", type=click.IntRange(1), default=8, show_default=True,
              help="Largest K stepped with the exact objective; larger K sample --sample identities per step.")
@click.option("--sample", type=click.IntRange(1), default=4, show_default=True, help="sample_identities above --exact-max.")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads per measurement.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON here.")
def batch_bench(counts, steps, warmup, device, nrr, identity_chunk, exact_max, sample, threads, json_path) -> None:
    """Time and peak memory of one joint-erase step against the number of identities (tiny
    random model; each K in a fresh process). See guide/batch/bench.py for what is measured."""
    import json

    from guide.batch.bench import BatchBenchSettings, format_table, run_batch_bench
    from guide.devices import resolve_device
    from guide.io.atomic import write_text_atomic

    settings = BatchBenchSettings(counts=counts, steps=steps, warmup=warmup, device=str(resolve_device(device)),
                                  nrr=nrr,
                                  identity_chunk=identity_chunk, exact_max=exact_max, sample=sample, threads=threads)
    report = run_batch_bench(settings, progress=lambda m: click.echo(m, err=True))
    click.echo(format_table(report))
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(report, indent=2) + "\n")
        click.echo(f"wrote {json_path}", err=True)


command = batch_bench
