"""Reading a ``guide erase`` output folder: its settings, renders, generators and metrics file.

The folder holds ``config.json`` (settings; ``source_generator`` and its sha256; the camera either
as ``camera`` or under ``erase.ltu.camera``), ``generator.safetensors`` + ``generator.json`` (the
unlearned generator), ``renders/before_XX.png`` / ``renders/after_XX.png`` (the erased identity
from every evaluation yaw, rendered by the source and by the unlearned generator), the target
image (``renders/target.png`` or ``renders/target_XX.png``), ``grid.png``, ``losses.png``,
``latents.pt`` and ``metrics.json``. :meth:`EraseOutput.open` checks the parts a command needs
and names what is missing in one line.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from guide.config import CameraConfig
from guide.errors import GuideError

PathLike = Union[str, Path]

CONFIG = "config.json"
METRICS = "metrics.json"
GENERATOR_JSON = "generator.json"
_VIEW = re.compile(r"^(before|after|target)_(\d+)\.png$")

# what each use of the folder needs
NEEDS_RENDERS = "renders"
NEEDS_GENERATOR = "generator"


class NotAnEraseOutputError(GuideError):
    """A folder that is not (or no longer) a complete ``guide erase`` output."""


def _numbered(folder: Path, kind: str) -> List[Path]:
    """``folder/kind_XX.png`` sorted by their number (not lexicographically)."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _VIEW.match(path.name)
        if match and match.group(1) == kind:
            found.append((int(match.group(2)), path))
    return [p for _, p in sorted(found)]


def _read_json(path: Path, what: str) -> Dict[str, Any]:
    from guide.io.documents import load_json

    try:
        value = load_json(path, NotAnEraseOutputError)
    except NotAnEraseOutputError as exc:
        raise NotAnEraseOutputError(f"cannot read {what} {exc}") from None
    if not isinstance(value, dict):
        raise NotAnEraseOutputError(f"{what} {path} does not hold a JSON object")
    return value


@dataclass
class EraseOutput:
    """One ``guide erase`` output folder (see the module docstring)."""

    root: Path
    config: Dict[str, Any]

    @classmethod
    def open(cls, path: PathLike, needs: Sequence[str] = (NEEDS_RENDERS, NEEDS_GENERATOR)) -> "EraseOutput":
        """Check the folder and read its settings; :class:`NotAnEraseOutputError` names what is missing."""
        root = Path(path).expanduser()
        if not root.is_dir():
            raise NotAnEraseOutputError(f"{root} is not a folder (expected a `guide erase --out` folder)")
        missing = []
        if not (root / CONFIG).is_file():
            missing.append(CONFIG)
        if NEEDS_GENERATOR in needs and not (root / GENERATOR_JSON).is_file():
            missing.append("generator.json + generator.safetensors")
        if NEEDS_RENDERS in needs:
            renders = root / "renders"
            if not _numbered(renders, "before"):
                missing.append("renders/before_XX.png")
            if not _numbered(renders, "after"):
                missing.append("renders/after_XX.png")
        if missing:
            raise NotAnEraseOutputError(
                f"{root} is not a `guide erase` output folder (missing {', '.join(missing)})")
        run = cls(root, _read_json(root / CONFIG, "settings file"))
        if NEEDS_RENDERS in needs and len(run.before_paths) != len(run.after_paths):
            raise NotAnEraseOutputError(
                f"{root}/renders has {len(run.before_paths)} before_XX.png but {len(run.after_paths)} after_XX.png")
        return run

    # ------------------------------------------------------------------ images
    @property
    def before_paths(self) -> List[Path]:
        """Renders of the erased identity by the source generator, one per yaw."""
        return _numbered(self.root / "renders", "before")

    @property
    def after_paths(self) -> List[Path]:
        """Renders of the erased identity by the unlearned generator, same yaws."""
        return _numbered(self.root / "renders", "after")

    @property
    def target_path(self) -> Optional[Path]:
        """The target image: ``renders/target.png``, else the middle ``target_XX.png``, else None."""
        single = self.root / "renders" / "target.png"
        if single.is_file():
            return single
        views = _numbered(self.root / "renders", "target")
        return views[len(views) // 2] if views else None

    def optional_file(self, name: str) -> Optional[Path]:
        """``root/name`` if it exists (grid.png, losses.png, losses.jsonl, latents.pt, ...)."""
        path = self.root / name
        return path if path.is_file() else None

    # ---------------------------------------------------------------- settings
    @property
    def camera(self) -> CameraConfig:
        """The erasure's camera settings (``camera`` or ``erase.ltu.camera``; defaults otherwise)."""
        raw = self.config.get("camera")
        if not isinstance(raw, Mapping):
            raw = ((self.config.get("erase") or {}).get("ltu") or {}).get("camera")
        if not isinstance(raw, Mapping):
            return CameraConfig()
        defaults = CameraConfig()
        return CameraConfig(
            fov_degrees=float(raw.get("fov_degrees", defaults.fov_degrees)),
            pivot=tuple(float(v) for v in raw.get("pivot", defaults.pivot)),
            radius=float(raw.get("radius", defaults.radius)),
            yaw_range=float(raw.get("yaw_range", defaults.yaw_range)),
            pitch_offset=float(raw.get("pitch_offset", defaults.pitch_offset)),
        )

    @property
    def renders(self) -> str:
        """How the erasure rendered before/after ('paired' or 'random') and its seed."""
        erase = self.config.get("erase") or {}
        return erase.get("renders", "paired") if isinstance(erase, Mapping) else "paired"

    @property
    def seed(self) -> int:
        erase = self.config.get("erase") or {}
        return int(erase.get("seed", 0) or 0) if isinstance(erase, Mapping) else 0

    @property
    def source_generator(self) -> Optional[Path]:
        """Path of the pretrained generator the erasure started from, if the settings name a file."""
        value = self.config.get("source_generator")
        if isinstance(value, Mapping):
            value = value.get("path")
        if not isinstance(value, str) or not value or value == "built-in":
            return None
        return Path(value)

    @property
    def source_sha256(self) -> Optional[str]:
        """The recorded sha256 of the source generator file, if any."""
        value = self.config.get("source_generator_sha256")
        if value is None and isinstance(self.config.get("source_generator"), Mapping):
            value = self.config["source_generator"].get("sha256")
        return value if isinstance(value, str) and value else None

    @property
    def generator_path(self) -> Path:
        """The unlearned generator (our format; pass to :func:`guide.io.load_any_generator`)."""
        return self.root / GENERATOR_JSON

    def latents(self) -> Dict[str, Any]:
        """``latents.pt`` (w_u, w_t, ...) read with ``weights_only``; empty dict if absent."""
        from guide.io.state_files import load_state_file

        path = self.optional_file("latents.pt")
        if path is None:
            return {}
        try:
            value = load_state_file(path)
        except GuideError as exc:  # unreadable or implausible: one line
            raise NotAnEraseOutputError(f"cannot read {exc}") from None
        return dict(value) if isinstance(value, Mapping) else {}

    # ----------------------------------------------------------------- metrics
    def read_metrics(self) -> Dict[str, Any]:
        """``metrics.json`` as a dict (empty if absent)."""
        path = self.root / METRICS
        return _read_json(path, "metrics file") if path.is_file() else {}

    def merge_metrics(self, updates: Mapping[str, Any]) -> Dict[str, Any]:
        """Update ``metrics.json`` with ``updates`` (other keys are kept), atomically; returns the result."""
        from guide.io.atomic import write_text_atomic

        merged = self.read_metrics()
        for key, value in updates.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        write_text_atomic(self.root / METRICS, json.dumps(merged, indent=2, default=str) + "\n")
        return merged
