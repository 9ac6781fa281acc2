"""Every bound guide puts on what it reads from files, job files and options, in one place.

Files from elsewhere (checkpoints, job files, a colleague's output folder) decide how much
memory and time a command takes, so each count and size they carry is bounded before any
work; a value outside gives one line naming the file and the field. The bounds sit far
above anything the paper's protocol or the released checkpoints use. Model-file bounds
(tensor size, generator configuration) belong to the EG3D reader (:mod:`eg3d.bounds`) and
are re-exported here, so guide's own loaders use the same numbers.
"""
from __future__ import annotations

from eg3d.bounds import (  # noqa: F401 - re-exported
    MAX_NESTING,
    MAX_TENSOR_ELEMENTS,
    GeneratorConfigError,
    check_generator_config,
)

#: Elements that expanded (stride-0) views in one torch file may claim beyond their storages: a
#: [14, 512] broadcast of one row passes, a 4-byte storage posing as 10^9 elements does not.
MAX_VIEW_EXPANSION = 1 << 20
#: Largest JSON document read (generator.json, config.json, metrics.json, status.json, job files).
MAX_DOCUMENT_BYTES = 64 << 20
#: Values in one JSON/YAML document, YAML aliases expanded (a 500-byte "billion laughs" has 10^9).
MAX_DOCUMENT_VALUES = 1_000_000
#: Identities in one batch (listed plus random_identities.count), and in its retain set.
MAX_IDENTITIES = 100_000
#: Renders per identity (the paper: 11 yaws).
MAX_VIEWS = 360
#: Samples per generator for FID (the paper: 5000).
MAX_FID_SAMPLES = 1_000_000
#: Latents per step in one loss term or forward pass (adjacency / global batch, identity chunk).
MAX_LATENT_BATCH = 1024
#: Adam steps (the paper: 1000).
MAX_ITERS = 10_000_000
#: Seeds: torch takes unsigned 64-bit seeds and the trainer derives seed + 1 and seed + 2.
MAX_SEED = 2**63 - 1
