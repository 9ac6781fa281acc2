"""The paper's reference values for the four metrics, shown beside ours in the report.

Source: J. Seo, S.-H. Lee, T.-Y. Lee, S. Moon, G.-M. Park, "Generative Unlearning for Any
Identity", CVPR 2024 (arXiv:2405.09879) -- the main quantitative table for EG3D (FFHQ), rows
"GUIDE" in the Random, InD (FFHQ photos) and OOD (CelebA-HQ photos) scenarios.

The values are deliberately left unset (shown as "n/a"): when this module was written the
table's numbers could not be read from a source we could check, and an invented or misremembered
number beside a measured one is worse than none. To fill them, copy the GUIDE row of that table
into :data:`PAPER_VALUES` and name the table in :data:`PAPER_TABLE`.
"""
from __future__ import annotations

from typing import Dict, Optional

PAPER = ('Seo et al., "Generative Unlearning for Any Identity", CVPR 2024 (arXiv:2405.09879)')
PAPER_TABLE: Optional[str] = None  # e.g. "Table 1, rows GUIDE" once transcribed
SCENARIOS = ("Random", "InD", "OOD")
METRICS = ("ID", "ID_others", "FID_pre", "delta_FID_real")

# scenario -> metric -> value; None = not transcribed (the report shows "n/a")
PAPER_VALUES: Dict[str, Dict[str, Optional[float]]] = {s: {m: None for m in METRICS} for s in SCENARIOS}


def scenario_of(config: dict) -> Optional[str]:
    """The paper scenario an erasure corresponds to, when its settings tell: random identity -> Random."""
    identity = config.get("identity") if isinstance(config, dict) else None
    kind = identity.get("kind") if isinstance(identity, dict) else None
    return "Random" if kind == "random" else None
