"""`guide bench`: speed and memory benchmarks."""
from __future__ import annotations

from pathlib import Path

import click

from guide.commands._options import check_speed_options, device_option, speed_options
from eg3d.bounds import INT_BOUNDS
from guide.errors import GuideError

#: Peak memory of one full-size LTU step on CPU, measured at neural rendering resolution 64
#: (docs/performance.md, 2026-11-26: peak RSS 19 GB); the default resolution 128 needs more.
FULL_LTU_STEP_CPU_GIB = 19.0
LTU_SECTIONS = ("ltu_step", "ltu_step_reference_style", "erase_loop")


def available_memory_gib() -> "float | None":
    """MemAvailable of /proc/meminfo in GiB (None where there is no such file)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(device: str, config: str, sections) -> None:
    """One line instead of an out-of-memory kill: the full-size LTU step on a CPU without the memory."""
    if not device.startswith("cpu") or config != "full" or not set(sections) & set(LTU_SECTIONS):
        return
    free = available_memory_gib()
    if free is not None and free < FULL_LTU_STEP_CPU_GIB:
        raise GuideError(f"the full-size LTU step needs about {FULL_LTU_STEP_CPU_GIB:.0f} GiB of memory on CPU, and "
                         f"{free:.1f} GiB are available here: run `guide bench --config tiny`, "
                         "`guide bench --only forward --only ops`, or `--device cuda`")


@click.command()
@device_option()
@click.option("--config", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
              help="full = the ffhqrebalanced512-128 architecture (random weights); tiny = small test model.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch of the forward benchmark.")
@click.option("--steps", type=click.IntRange(1), default=5, show_default=True, help="Timed repetitions (LTU step and erase loop: mean of consecutive steps; forward and ops: median).")
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32", show_default=True,
              help="fp32: exact; tf32: TF32 matmul/conv; bf16: autocast to bfloat16.")
@click.option("--sr-fp32", is_flag=True, help="On CUDA, run the super-resolution blocks in fp32 instead of "
              "upstream's fp16.")
@speed_options
@click.option("--nrr", "neural_rendering_resolution",
              type=click.IntRange(8, INT_BOUNDS["neural_rendering_resolution"][1]), default=None,
              help="Neural rendering resolution (default: 128 full, 32 tiny).")
@click.option("--only", "sections", multiple=True,
              type=click.Choice(["forward", "ltu_step", "ltu_step_reference_style", "erase_loop", "ops", "audit"]),
              help="Run only these sections (repeatable; ltu_step_reference_style adds the x ref column).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON here.")
def bench(device, config, batch, steps, warmup, precision, sr_fp32, fused_adam, cuda_graph, channels_last, compile_,
          neural_rendering_resolution, sections, json_path) -> None:
    """Measure speed and peak memory: generator forward, the LTU step, the erase loop around it,
    and the ops (--only audit: the parts of one `guide audit` and its estimated total time)."""
    from guide.bench import BenchSettings, format_table, run_bench, write_json
    from guide.devices import resolve_device

    dev = resolve_device(device)
    check_speed_options(dev, cuda_graph, compile_)
    check_memory(str(dev), config, tuple(sections) or BenchSettings.sections)
    settings = BenchSettings(
        device=str(dev), config=config, batch=batch, steps=steps, warmup=warmup, precision=precision,
        sr_fp16=not sr_fp32, compile=compile_, channels_last=channels_last, fused_adam=fused_adam,
        cuda_graph=cuda_graph,
        neural_rendering_resolution=neural_rendering_resolution,
        sections=tuple(sections) or BenchSettings.sections,
    )
    report = run_bench(settings, progress=lambda msg: click.echo(msg, err=True))
    click.echo(format_table(report))
    if json_path is not None:
        write_json(report, json_path)
        click.echo(f"wrote {json_path}", err=True)


command = bench
