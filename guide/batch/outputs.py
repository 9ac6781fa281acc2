"""Files of the one-model modes (joint, sequential), written with erase.py's own helpers.

DIR/model/ holds the unlearned generator (generator.safetensors + generator.json, whose
provenance records the batch: mode, identities or stages done), config.json, latents.pt,
losses.jsonl/losses.png, checkpoint/state.pt and metrics.json (whole-model metrics).
DIR/<id>/ holds what an erase folder holds for that identity except the generator:
config.json, latents.pt, renders/before|after|target_XX.png, grid.png, metrics.json.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import torch

from guide.batch.schema import JobIdentity

MODEL_DIR = "model"


def read_json(path: Path, default=None):
    """The JSON in `path`, or `default` when it is missing, unreadable or implausible."""
    from guide.errors import GuideError
    from guide.io.documents import load_json

    try:
        return load_json(path)
    except GuideError:
        return default


def merge_json(path: Path, updates: dict) -> dict:
    """Update a JSON object file atomically; returns the merged object."""
    from guide.erase import write_json

    data = read_json(path, {}) or {}
    data.update(json.loads(json.dumps(updates, default=str)))
    write_json(Path(path), data)
    return data


def identity_settings(kit, entry: JobIdentity, batch: dict) -> dict:
    """erase's config.json record for one identity, plus the batch it belongs to."""
    from guide.erase import erase_settings

    res = kit.resources
    settings = erase_settings(entry.to_identity(), kit.job.erase, kit.device, res.generator_path, kit.w_avg_source,
                              res.networks, res.checkpoint_dir)
    settings["id"] = entry.id
    settings["name"] = entry.name
    settings["batch"] = {"generator": f"../{MODEL_DIR}/generator.json", **batch}
    return settings


def write_identity_outputs(kit, G, entry: JobIdentity, w_u: torch.Tensor, w_t: torch.Tensor, out: Path,
                           settings: dict, metrics: dict, pairs) -> dict:
    """config.json, latents.pt, renders, grid.png and metrics.json of one identity of a one-model batch."""
    from guide.batch.kit import identity_metrics
    from guide.erase import render_identity, write_json, write_tensors

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", settings)
    write_tensors(out / "latents.pt", w_u=w_u, w_t=w_t)
    pixel = render_identity(kit.G_src, G, w_u, w_t, out, kit.camera, kit.views)
    merged = {**metrics, **pixel, **identity_metrics(kit, G, w_u, pairs), "evaluation": kit.eval_note}
    write_json(out / "metrics.json", json.loads(json.dumps(merged, default=str)))
    return merged


def save_model(G, model_dir: Path, kit, marks: dict) -> None:
    """Save the batch's generator; `marks` (mode, identities / stages, ...) go into its provenance."""
    from guide.io import Provenance, save_generator

    res = kit.resources
    from guide.io.hashing import sha256_file

    path = res.generator_path
    provenance = Provenance(method=kit.job.erase.method, source_checkpoint=str(path) if path else kit.job.generator,
                            source_sha256=sha256_file(path) if path else None, hyperparameters=kit.job.erase.to_dict(),
                            extra={"batch": marks})
    save_generator(G, model_dir / "generator", provenance=provenance)


def model_marks(model_dir: Path) -> Dict:
    """The batch marks of a saved model ({} when there is none yet)."""
    config = read_json(Path(model_dir) / "generator.json")
    if not isinstance(config, dict):
        return {}
    return (config.get("provenance") or {}).get("batch") or {}


def save_losses(model_dir: Path, history: List[dict]) -> None:
    from guide.erase import loss_curve_png
    from guide.io.atomic import write_bytes_atomic

    write_bytes_atomic(Path(model_dir) / "losses.png", loss_curve_png(history))


def load_latents(path: Path, device) -> Optional[dict]:
    """A latents.pt the batch wrote (None when absent); damaged or implausible: one line."""
    from guide.io.state_files import load_state_file

    if not Path(path).is_file():
        return None
    value = load_state_file(path, device=device)
    if not isinstance(value, dict):
        from guide.errors import GuideError

        raise GuideError(f"{path}: not a latents file of this toolkit")
    return value
