"""The ``guide`` command line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import click

import guide
from guide.errors import GuideError


class _OneLineError(click.ClickException):
    """Carries a GuideError through click: printed as ``error: ...``, exit code from the error."""

    def __init__(self, error: GuideError) -> None:
        super().__init__(error.one_line())
        self.exit_code = error.exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class GuideGroup(click.Group):
    """A click group whose commands report :class:`GuideError` as one line, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GuideError as exc:
            raise _OneLineError(exc) from None


@click.group(cls=GuideGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(guide.__version__, "--version", prog_name="guide")
def cli() -> None:
    """GUIDE: make a 3D-aware face generator forget one identity.

    A reimplementation of GUIDE (generative identity unlearning, CVPR 2024) for the EG3D
    tri-plane generator: it fine-tunes a pretrained EG3D checkpoint so that one person's
    face (a random latent or a photo inverted with GOAE) renders as a different identity
    from every viewpoint, while other identities stay as they were.

    Pretrained weights are read from a checkpoint directory: --checkpoints DIR where a
    command offers it, else $GUIDE_CHECKPOINTS, else ./checkpoints. Start with
    `guide doctor` to check the setup.
    """


@cli.command()
@click.option(
    "--checkpoints",
    "checkpoints",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Checkpoint directory (default: $GUIDE_CHECKPOINTS, else ./checkpoints).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(checkpoints: Optional[Path], as_json: bool) -> None:
    """Check the setup: software, GPUs, CUDA kernels, checkpoints.

    Reports Python, torch, torchvision, CUDA/cuDNN, GPU names and memory, whether nvcc and
    ninja are on the PATH, the state of the compiled EG3D CUDA kernels and which pretrained
    checkpoint files are in the checkpoint directory.
    """
    from guide.doctor import collect, format_report
    from guide.paths import resolve_checkpoint_dir

    info = collect(resolve_checkpoint_dir(checkpoints))
    click.echo(json.dumps(info, indent=2, default=str) if as_json else format_report(info))


@cli.command()
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--config", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
              help="full = the ffhqrebalanced512-128 architecture (random weights); tiny = small test model.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch of the forward benchmark.")
@click.option("--steps", type=click.IntRange(1), default=5, show_default=True, help="Timed repetitions (median).")
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32", show_default=True,
              help="fp32: exact; tf32: TF32 matmul/conv; bf16: autocast to bfloat16.")
@click.option("--sr-fp32", is_flag=True, help="On CUDA, run the super-resolution blocks in fp32 instead of "
              "upstream's fp16.")
@click.option("--nrr", "neural_rendering_resolution", type=click.IntRange(8), default=None,
              help="Neural rendering resolution (default: 128 full, 32 tiny).")
@click.option("--only", "sections", multiple=True, type=click.Choice(["forward", "ltu_step", "ltu_step_reference_style", "ops"]),
              help="Run only these sections (repeatable).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON here.")
def bench(device, config, batch, steps, warmup, precision, sr_fp32, neural_rendering_resolution, sections,
          json_path) -> None:
    """Measure speed and peak memory: generator forward, one LTU step, and the ops."""
    from guide.bench import BenchSettings, format_table, run_bench, write_json

    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise GuideError(f"--device {device} was requested but CUDA is not available on this machine")
    settings = BenchSettings(
        device=device, config=config, batch=batch, steps=steps, warmup=warmup, precision=precision,
        sr_fp16=not sr_fp32, neural_rendering_resolution=neural_rendering_resolution,
        sections=tuple(sections) or BenchSettings.sections,
    )
    report = run_bench(settings, progress=lambda msg: click.echo(msg, err=True))
    click.echo(format_table(report))
    if json_path is not None:
        write_json(report, json_path)
        click.echo(f"wrote {json_path}", err=True)


def main() -> None:
    """Console-script entry point (``guide``)."""
    cli(prog_name="guide")


if __name__ == "__main__":
    main()
