"""The ``guide`` command line."""
from __future__ import annotations

from typing import Any

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


def _register_commands(group: click.Group) -> None:
    """Add every command module in guide/commands (each exposes `command`)."""
    import importlib
    import pkgutil

    import guide.commands

    for info in sorted(pkgutil.iter_modules(guide.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"guide.commands.{info.name}")
        group.add_command(module.command)


_register_commands(cli)


def main() -> None:
    """Console-script entry point (``guide``)."""
    cli(prog_name="guide")


if __name__ == "__main__":
    main()
