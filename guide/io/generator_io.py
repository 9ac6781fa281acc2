"""Our generator format: weights as safetensors plus a JSON description.

``<stem>.safetensors`` holds the ``state_dict`` tensors; ``<stem>.json`` holds what is needed
to rebuild the module (class, constructor ``init_args``/``init_kwargs``, ``rendering_kwargs``,
``neural_rendering_resolution``), the weights file's name, size and SHA-256, and provenance
(source checkpoint and its SHA-256, method, hyperparameters, toolkit version, creation time).

Saving writes the weights first and the JSON last, each atomically, and removes an older
JSON before touching the weights: an interrupted save leaves no pair that loads. Loading
checks the weights' size and SHA-256 against the JSON before reading a tensor, and the
recorded constructor arguments and rendering options against :mod:`eg3d.bounds` before
building anything (the hash covers only the weights); the tensors must have the model's
dtypes and finite values.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch

import guide

from eg3d.bounds import GeneratorConfigError, check_generator_config

from .atomic import atomic_path, write_text_atomic
from .errors import CorruptCheckpointError, IncompatibleGeneratorError, MissingCheckpointError
from .hashing import sha256_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "GeneratorFiles",
    "GeneratorSpec",
    "Provenance",
    "generator_paths",
    "generator_spec",
    "load_generator",
    "read_generator_config",
    "save_generator",
]

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "guide-generator"
FORMAT_VERSION = 1
DEFAULT_STEM = "generator"
WEIGHTS_SUFFIX = ".safetensors"
CONFIG_SUFFIX = ".json"


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything besides the tensors that rebuilds a generator."""

    class_name: str
    init_args: tuple
    init_kwargs: Dict[str, Any]
    rendering_kwargs: Dict[str, Any]
    neural_rendering_resolution: int


@dataclass
class Provenance:
    """Where a saved generator came from. ``hyperparameters`` may be a dict or a dataclass."""

    method: Optional[str] = None
    source_checkpoint: Optional[str] = None
    source_sha256: Optional[str] = None
    hyperparameters: Any = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GeneratorFiles:
    """The two files of a saved generator."""

    weights: Path
    config: Path


# ---------------------------------------------------------------------------- the spec


def generator_spec(G: torch.nn.Module) -> GeneratorSpec:
    """Read the constructor arguments the generator recorded when it was built.

    Uses ``G.init_args``/``G.init_kwargs`` (set by ``eg3d.TriPlaneGenerator.__init__``), or
    upstream's ``_init_args``/``_init_kwargs``. Raises ``ValueError`` when neither exists:
    pass ``spec=`` to :func:`save_generator` then.
    """
    kwargs = getattr(G, "init_kwargs", None)
    args = getattr(G, "init_args", None)
    if not isinstance(kwargs, Mapping):
        kwargs, args = getattr(G, "_init_kwargs", None), getattr(G, "_init_args", None)
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"{type(G).__name__} did not record its constructor kwargs (init_kwargs); pass spec=")
    rendering = getattr(G, "rendering_kwargs", None)
    if not isinstance(rendering, Mapping):
        rendering = kwargs.get("rendering_kwargs") or {}
    return GeneratorSpec(
        class_name=type(G).__name__,
        init_args=tuple(copy.deepcopy(args or ())),
        init_kwargs=copy.deepcopy(dict(kwargs)),
        rendering_kwargs=copy.deepcopy(dict(rendering)),
        neural_rendering_resolution=int(getattr(G, "neural_rendering_resolution", 64)),
    )


def _builders() -> Dict[str, Any]:
    from eg3d.triplane import TriPlaneGenerator

    return {"TriPlaneGenerator": TriPlaneGenerator}


# ------------------------------------------------------------------------ JSON values

_TUPLE_TAG = "__tuple__"


def _to_json(value: Any, where: str) -> Any:
    """Exact JSON form of kwargs values; tuples are tagged so they come back as tuples."""
    if value is None or isinstance(value, (bool, int, float, str)) and type(value).__module__ == "builtins":
        return value
    if isinstance(value, float):  # numpy float64 and friends
        return float(value)
    if isinstance(value, tuple):
        return {_TUPLE_TAG: [_to_json(v, where) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, where) for v in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where}: dict keys must be strings to be saved as JSON")
        return {k: _to_json(v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_json(dataclasses.asdict(value), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{where}: {type(value).__name__} cannot be saved as JSON")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_TUPLE_TAG} and isinstance(value[_TUPLE_TAG], list):
            return tuple(_from_json(v) for v in value[_TUPLE_TAG])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _provenance_json(provenance: Union[Provenance, Mapping[str, Any], None]) -> Dict[str, Any]:
    if provenance is None:
        provenance = Provenance()
    if isinstance(provenance, Provenance):
        fields = {
            "method": provenance.method,
            "source_checkpoint": provenance.source_checkpoint,
            "source_sha256": provenance.source_sha256,
            "hyperparameters": provenance.hyperparameters,
            **provenance.extra,
        }
    elif isinstance(provenance, Mapping):
        fields = {"method": None, "source_checkpoint": None, "source_sha256": None, "hyperparameters": {},
                  **provenance}
    else:
        raise TypeError("provenance must be a Provenance, a dict or None")
    fields["toolkit_version"] = guide.__version__
    fields["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return _to_json(fields, "provenance")


# ---------------------------------------------------------------------------- paths


def generator_paths(path: PathLike) -> Tuple[Path, Path]:
    """(weights, config) paths for a directory, a stem, or either file of the pair.

    ``out/`` (an existing directory) -> ``out/generator.{safetensors,json}``;
    ``out/g``, ``out/g.json`` or ``out/g.safetensors`` -> ``out/g.{safetensors,json}``.
    """
    p = Path(path)
    if p.is_dir():
        stem = p / DEFAULT_STEM
    elif p.suffix in (WEIGHTS_SUFFIX, CONFIG_SUFFIX):
        stem = p.with_suffix("")
    else:
        stem = p
    return stem.with_name(stem.name + WEIGHTS_SUFFIX), stem.with_name(stem.name + CONFIG_SUFFIX)


# --------------------------------------------------------------------------- saving


def save_generator(
    G: torch.nn.Module,
    path: PathLike,
    *,
    provenance: Union[Provenance, Mapping[str, Any], None] = None,
    spec: Optional[GeneratorSpec] = None,
) -> GeneratorFiles:
    """Save ``G`` as ``<stem>.safetensors`` + ``<stem>.json`` (see :func:`generator_paths`).

    ``spec`` defaults to :func:`generator_spec` (``G.init_kwargs``). ``provenance`` (a
    :class:`Provenance` or a dict with ``method``, ``source_checkpoint``, ``source_sha256``,
    ``hyperparameters`` and any extra JSON-able keys) is stored with the toolkit version and
    the UTC creation time. Returns the two paths.
    """
    from safetensors.torch import save_file

    spec = spec if spec is not None else generator_spec(G)
    weights, config = generator_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in G.state_dict().items()}
    document: Dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class_name": spec.class_name,
        "init_args": [_to_json(v, "init_args") for v in spec.init_args],
        "init_kwargs": _to_json(spec.init_kwargs, "init_kwargs"),
        "rendering_kwargs": _to_json(spec.rendering_kwargs, "rendering_kwargs"),
        "neural_rendering_resolution": int(spec.neural_rendering_resolution),
        "provenance": _provenance_json(provenance),
    }
    if config.exists():
        config.unlink()  # from here until the new JSON lands, no pair looks valid
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        document["weights"] = {
            "file": weights.name,
            "bytes": tmp.stat().st_size,
            "sha256": sha256_file(tmp),
            "num_tensors": len(tensors),
        }
    write_text_atomic(config, json.dumps(document, indent=2, allow_nan=True) + "\n")
    return GeneratorFiles(weights=weights, config=config)


# -------------------------------------------------------------------------- loading


def read_generator_config(path: PathLike) -> Dict[str, Any]:
    """The JSON description of a saved generator (tuples restored), validated."""
    from .documents import load_json

    _, config = generator_paths(path)
    if not config.is_file():
        raise MissingCheckpointError(
            f"{config}: missing (the JSON half of a saved generator; an interrupted save leaves none)")
    document = load_json(config, error=CorruptCheckpointError)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CorruptCheckpointError(f"{config}: not a {FORMAT} description")
    if not isinstance(document.get("format_version"), int) or document["format_version"] > FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"{config}: format version {document.get('format_version')!r} is newer than this toolkit reads "
            f"({FORMAT_VERSION}); upgrade guide")
    weights = document.get("weights")
    if not isinstance(weights, dict) or not all(k in weights for k in ("file", "bytes", "sha256")):
        raise CorruptCheckpointError(f"{config}: has no weights entry (file, bytes, sha256)")
    name = weights["file"]
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise CorruptCheckpointError(f"{config}: weights file name {name!r} must be a plain file name")
    if not isinstance(weights["bytes"], int) or not isinstance(weights["sha256"], str):
        raise CorruptCheckpointError(f"{config}: weights entry needs an integer 'bytes' and a text 'sha256'")
    document = _from_json(document)
    try:
        check_generator_config(document.get("init_args") or (), document.get("init_kwargs"),
                               document.get("rendering_kwargs"), document.get("neural_rendering_resolution"))
    except GeneratorConfigError as exc:
        raise CorruptCheckpointError(f"{config}: {exc}") from None
    return document


def _verified_weights(config: Path, entry: Mapping[str, Any]) -> Path:
    weights = config.parent / entry["file"]
    if not weights.is_file():
        raise MissingCheckpointError(f"{weights}: missing (weights of {config.name})")
    size = weights.stat().st_size
    if size != entry["bytes"]:
        raise CorruptCheckpointError(
            f"{weights}: {size} bytes, but {config.name} records {entry['bytes']} (truncated or replaced)")
    if sha256_file(weights) != entry["sha256"]:
        raise CorruptCheckpointError(
            f"{weights}: sha256 does not match {config.name} (the weights were modified or damaged after saving)")
    return weights


def load_generator(path: PathLike, *, device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """Load a generator saved by :func:`save_generator`: eval mode, no grad, on ``device``.

    ``path`` is the directory, the stem or either file. The weights' SHA-256 is checked
    first; the state_dict comes back bit-identical, with the saved kwargs and attributes.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    _, config = generator_paths(path)
    document = read_generator_config(config)
    weights = _verified_weights(config, document["weights"])
    builder = _builders().get(document.get("class_name"))
    if builder is None:
        raise IncompatibleGeneratorError(f"{config}: unknown generator class {document.get('class_name')!r}")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptCheckpointError(f"{weights}: unreadable safetensors file ({' '.join(str(exc).split())})") from None
    try:
        G = builder(*tuple(document.get("init_args") or ()), **(document.get("init_kwargs") or {}))
        _check_dtypes(G.state_dict(), tensors, weights)
        G.load_state_dict(tensors, strict=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise IncompatibleGeneratorError(f"{config}: weights do not fit the recorded generator ({first})") from None
    G.rendering_kwargs = document.get("rendering_kwargs", G.rendering_kwargs)
    G.neural_rendering_resolution = int(document.get("neural_rendering_resolution", G.neural_rendering_resolution))
    check_finite_weights(G, weights)
    return G.eval().requires_grad_(False).to(device)


def _check_dtypes(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], source: Path) -> None:
    """Refuse tensors whose dtype differs from the model's (load_state_dict would cast silently)."""
    wrong = [f"{k} {found[k].dtype} (expected {t.dtype})" for k, t in expected.items()
             if k in found and found[k].dtype != t.dtype]
    if wrong:
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        raise IncompatibleGeneratorError(f"{source}: tensors of the wrong dtype: {', '.join(wrong[:3])}{more}")


def check_finite_weights(G: torch.nn.Module, source: PathLike) -> None:
    """One-line error when a weight or buffer of `G` holds NaN or infinity (it would render black)."""
    bad = [name for name, t in G.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CorruptCheckpointError(f"{source}: non-finite values (NaN or infinity) in {', '.join(bad[:3])}{more}")
