"""Where the toolkit looks for pretrained checkpoints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Union

CHECKPOINTS_ENV = "GUIDE_CHECKPOINTS"
DEFAULT_CHECKPOINT_DIR = "checkpoints"


def _checkpoint_files() -> Dict[str, str]:
    from guide.checkpoints import registry

    return {name: entry.what for name, entry in registry().items()}


# File name -> what it is, for every file of the checkpoint registry (guide/checkpoints_manifest.json;
# see guide.checkpoints for purposes, sources, hashes). All sit directly in the checkpoint directory.
CHECKPOINT_FILES: Dict[str, str] = _checkpoint_files()


def resolve_checkpoint_dir(cli_value: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Checkpoint directory: ``cli_value`` if given, else ``$GUIDE_CHECKPOINTS``, else ``./checkpoints``.

    Empty strings count as unset. The result is absolute; it is not required to exist.
    """
    if cli_value is not None and str(cli_value) != "":
        chosen = Path(cli_value)
    elif os.environ.get(CHECKPOINTS_ENV):
        chosen = Path(os.environ[CHECKPOINTS_ENV])
    else:
        chosen = Path(DEFAULT_CHECKPOINT_DIR)
    return chosen.expanduser().absolute()
