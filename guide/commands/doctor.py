"""`guide doctor`: check the setup."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from guide.commands._options import checkpoints_option

import json

@click.command()
@checkpoints_option()
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



command = doctor
