"""Options shared by several commands (modules starting with '_' are not commands)."""
from __future__ import annotations

from pathlib import Path

import click


def checkpoints_option(dest: str = "checkpoints"):
    """--checkpoints DIR (default: $GUIDE_CHECKPOINTS, else ./checkpoints), stored in `dest`."""
    return click.option("--checkpoints", dest, type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Checkpoint directory (default: $GUIDE_CHECKPOINTS, else ./checkpoints).")


def device_option(help_prefix: str = ""):
    """--device (default auto: CUDA when available, else the CPU); resolve it with
    guide.devices.resolve_device."""
    from guide.devices import AUTO, DEVICE_HELP

    return click.option("--device", default=AUTO, show_default=True, help=f"{help_prefix}{DEVICE_HELP}")
