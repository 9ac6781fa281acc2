"""Where the toolkit looks for pretrained checkpoints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Union

CHECKPOINTS_ENV = "GUIDE_CHECKPOINTS"
DEFAULT_CHECKPOINT_DIR = "checkpoints"

# File name -> what it is. All are expected directly inside the checkpoint directory.
CHECKPOINT_FILES: Dict[str, str] = {
    "ffhqrebalanced512-128.pkl": "EG3D generator, FFHQ rebalanced 512/128",
    "w_avg_ffhqrebalanced512-128.pt": "average latent w of that generator",
    "encoder_FFHQ.pt": "GOAE inversion encoder",
    "model_ir_se50.pth": "ArcFace IR-SE50 (identity loss)",
    "CurricularFace_Backbone.pth": "CurricularFace (identity evaluation)",
    "vgg16-397923af.pth": "VGG16 backbone for LPIPS",
    "pt_inception-2015-12-05-6726825d.pth": "Inception for FID",
}


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
