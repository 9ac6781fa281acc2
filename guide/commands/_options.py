"""Options shared by several commands (modules starting with '_' are not commands)."""
from __future__ import annotations

from pathlib import Path

import click


def checkpoints_option(dest: str = "checkpoints"):
    """--checkpoints DIR (default: $GUIDE_CHECKPOINTS, else ./checkpoints), stored in `dest`."""
    return click.option("--checkpoints", dest, type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Checkpoint directory (default: $GUIDE_CHECKPOINTS, else ./checkpoints).")
