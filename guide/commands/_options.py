"""Options shared by several commands (modules starting with '_' are not commands)."""
from __future__ import annotations

from pathlib import Path

import click

from guide.limits import MAX_SEED

#: A seed option's type: torch takes 64-bit seeds (and the trainer derives seed + 1, seed + 2).
SEED = click.IntRange(0, MAX_SEED)


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and infinity (click's FloatRange lets NaN through)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def checkpoints_option(dest: str = "checkpoints"):
    """--checkpoints DIR (default: $GUIDE_CHECKPOINTS, else ./checkpoints), stored in `dest`."""
    return click.option("--checkpoints", dest, type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Checkpoint directory (default: $GUIDE_CHECKPOINTS, else ./checkpoints).")
