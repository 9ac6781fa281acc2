"""`guide checkpoints`: which pretrained weight files are in place, and are they intact."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from guide.commands._options import checkpoints_option

from guide.errors import GuideError


@click.command()
@checkpoints_option()
@click.option("--verify", is_flag=True,
              help="Also hash every present file (checked where the SHA-256 is known) and open it with its loader.")
@click.option("--json", "as_json", is_flag=True, help="Print the statuses as JSON.")
def checkpoints(checkpoints: Optional[Path], verify: bool, as_json: bool) -> None:
    """List the weight files the toolkit uses: present, missing, mismatch or unreadable.

    For each file of the registry (guide/checkpoints_manifest.json) it prints its state,
    size and what it is for; missing files say where to get them. Without --verify only
    cheap checks run (header, size, signs of truncation). Exits with an error when a
    present file is damaged (mismatch or unreadable); missing files alone are not an error.
    """
    from guide.checkpoints import MISSING, PRESENT, checkpoint_statuses, registry
    from guide.paths import resolve_checkpoint_dir

    directory = resolve_checkpoint_dir(checkpoints)
    statuses = checkpoint_statuses(directory, verify=verify)
    if as_json:
        payload = {"dir": str(directory), "exists": directory.is_dir(), "verified": verify,
                   "files": [s.as_dict() for s in statuses]}
        click.echo(json.dumps(payload, indent=2))
    else:
        entries = registry()
        click.echo(f"checkpoints  {directory}" + ("" if directory.is_dir() else "  (directory does not exist)"))
        width = max(len(s.name) for s in statuses)
        for s in statuses:
            size = _size(s.bytes)
            click.echo(f"  [{s.state:<10}] {s.name:<{width}}  {size:>9}  {entries[s.name].what}")
            if s.detail and (s.state != PRESENT or verify):
                click.echo(f"  {'':12} {s.detail}")
        present = sum(s.state == PRESENT for s in statuses)
        damaged_count = sum(s.state not in (PRESENT, MISSING) for s in statuses)
        click.echo(f"  {present}/{len(statuses)} checkpoint files present" + (" (verified)" if verify else "")
                   + (f", {damaged_count} damaged" if damaged_count else ""))
    damaged = [s for s in statuses if s.state not in (PRESENT, MISSING)]
    if damaged:
        names = ", ".join(f"{s.name} ({s.state})" for s in damaged)
        raise GuideError(f"{len(damaged)} checkpoint file(s) are damaged or differ from the registry: {names}")


def _size(n: Optional[int]) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


command = checkpoints
