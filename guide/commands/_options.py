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


def speed_options(command):
    """--fused-adam, --cuda-graph, --channels-last, --compile: the LTU step's opt-in speed options
    (LTUConfig fields of the same names; docs/performance.md has what each measured)."""
    options = [
        click.option("--fused-adam", is_flag=True,
                     help="Fused Adam: no host read per step (a NaN/inf step is masked on the device). "
                          "Opt-in until measured faster; results differ from the default Adam by rounding."),
        click.option("--cuda-graph", is_flag=True,
                     help="CUDA only: capture forward+backward+Adam once as a CUDA graph and replay it "
                          "(implies fused Adam). Opt-in until measured faster."),
        click.option("--channels-last", is_flag=True,
                     help="Channels-last (NHWC) features and weights in the whole generator and the loss "
                          "networks. Opt-in until measured faster."),
        click.option("--compile", "compile_", is_flag=True,
                     help="torch.compile the generators' synthesis network, renderer and super-resolution; "
                          "the compile time counts in every run. Opt-in until measured faster."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check_speed_options(device, cuda_graph: bool, compile_: bool) -> None:
    """One-line errors for combinations of speed options that cannot run, before any work."""
    from guide.errors import GuideError

    if cuda_graph and device.type != "cuda":
        raise GuideError("--cuda-graph needs --device cuda")
    if cuda_graph and compile_:
        raise GuideError("use either --compile or --cuda-graph, not both")


def device_option(help_prefix: str = ""):
    """--device (default auto: CUDA when available, else the CPU); resolve it with
    guide.devices.resolve_device."""
    from guide.devices import AUTO, DEVICE_HELP

    return click.option("--device", default=AUTO, show_default=True, help=f"{help_prefix}{DEVICE_HELP}")
