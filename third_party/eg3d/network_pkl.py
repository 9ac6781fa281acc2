"""Safe reader for official EG3D network pickles (``network-snapshot-*.pkl``).

Security model
--------------
Upstream ``legacy.load_network_pkl`` runs ``pickle.load`` with EG3D's
``torch_utils.persistence`` importer: every network in the file is a "persistent
object" whose record carries the full Python source of its defining module
(``module_src``), and upstream ``exec``s that text.  Loading an untrusted snapshot
upstream is therefore arbitrary code execution.

This module reads the same files without executing anything from them:

* Unpickling goes through :class:`_SafeUnpickler`, whose ``find_class`` resolves
  only the globals listed in :data:`ALLOWED_GLOBALS` (plus inert stand-ins for the
  non-persistent module classes in :data:`STAND_IN_CLASSES`).  Every other global
  (``os.system``, ``builtins.eval``, unknown ``torch.*`` names, ...) raises
  :class:`UnsafeCheckpointError` before anything is called.
* Every allow-listed callable is our own code or a plain data type: the persistence
  hook only records its ``meta`` dict in a :class:`PersistentRecord` (``module_src``
  is kept as a string and is never compiled, evaluated or executed); tensors are
  rebuilt from storages that ``torch.load(..., weights_only=True)`` decodes, with
  explicit bounds checks; numpy scalars are decoded with ``np.frombuffer`` from a
  restricted set of numeric dtypes; module classes become :class:`InertObject`
  instances that only keep their ``__dict__``.  Callables are handed to the
  unpickler wrapped in objects that refuse ``BUILD``, so a file cannot mutate them.
* Only after unpickling are networks rebuilt from *our* classes (see
  :data:`BUILDERS`): ``TriPlaneGenerator(*init_args, **init_kwargs)`` followed by a
  strict ``load_state_dict``, once the arguments passed :mod:`eg3d.bounds`.  Unknown
  persistent classes (discriminator, augment pipe, ...) stay inert records.

Memory stays bounded by the file's size: the unpickler keeps its memo in a dict (a huge
memo index costs nothing), a tensor must fit inside the bytes of its own storage (no
stride-0 expansion) and below :data:`eg3d.bounds.MAX_TENSOR_ELEMENTS`, and plain data and
module trees nest at most :data:`~eg3d.bounds.MAX_NESTING` / ``MAX_MODULE_DEPTH`` deep.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, ClassVar, Mapping, Union

import numpy as np
import torch

from .bounds import MAX_MODULE_DEPTH, MAX_NESTING, MAX_TENSOR_ELEMENTS, check_generator_config

__all__ = [
    "ALLOWED_GLOBALS",
    "BUILDERS",
    "CheckpointFormatError",
    "InertObject",
    "PersistentRecord",
    "STAND_IN_CLASSES",
    "UnsafeCheckpointError",
    "load_network_pkl",
    "module_state_dict",
    "read_snapshot_records",
]

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list (nothing was run)."""


class CheckpointFormatError(ValueError):
    """The file is not a readable EG3D network pickle (empty, truncated, ...)."""


# ----------------------------------------------------------------------------- records


def _plain(obj: Any, depth: int = 0) -> Any:
    """Recursively turn dict subclasses (EasyDict, OrderedDict) into dicts, lists into lists."""
    if depth > MAX_NESTING:
        raise CheckpointFormatError(f"data nested deeper than {MAX_NESTING} levels (or referring to itself)")
    if isinstance(obj, Mapping):
        return {k: _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v, depth + 1) for v in obj)
    return obj


def _module_state(node: Any) -> Mapping[str, Any]:
    if isinstance(node, (PersistentRecord, InertObject)):
        return node.state
    raise CheckpointFormatError(f"sub-module of type {type(node).__name__} is not a recorded module")


def module_state_dict(state: Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """Rebuild ``nn.Module.state_dict()`` from a pickled module ``__dict__``.

    Order: ``_parameters`` (non-None), then persistent ``_buffers``, then children
    in ``_modules`` order with ``"name."`` prefixes, exactly like torch.
    """
    out: dict[str, torch.Tensor] = {}
    stack, visits = [(prefix, state, 0)], 0
    while stack:  # iterative pre-order walk; children pushed in reverse
        pre, st, depth = stack.pop()
        visits += 1
        if visits > 1_000_000:
            raise CheckpointFormatError("module tree too large (cyclic _modules?)")
        if depth > MAX_MODULE_DEPTH:
            raise CheckpointFormatError(f"module tree deeper than {MAX_MODULE_DEPTH} levels (cyclic _modules?)")
        if not isinstance(st, Mapping):
            raise CheckpointFormatError(f"{pre or '<root>'}: module state is not a dict")
        skip = st.get("_non_persistent_buffers_set") or ()
        for group, skipped in (("_parameters", ()), ("_buffers", skip)):
            entries = st.get(group) or {}
            if not isinstance(entries, Mapping):
                raise CheckpointFormatError(f"{pre or '<root>'}: {group} is not a dict")
            for name, value in entries.items():
                if value is None or name in skipped:
                    continue
                if not isinstance(value, torch.Tensor):
                    raise CheckpointFormatError(f"{pre}{name} in {group} is not a tensor")
                out[pre + name] = value
        modules = st.get("_modules") or {}
        if not isinstance(modules, Mapping):
            raise CheckpointFormatError(f"{pre or '<root>'}: _modules is not a dict")
        children = [(f"{pre}{n}.", _module_state(c), depth + 1) for n, c in modules.items() if c is not None]
        stack.extend(reversed(children))
    return out


@dataclass(frozen=True, eq=False)
class PersistentRecord:
    """Inert record of one ``torch_utils.persistence`` object; nothing from it was run.

    ``state`` is the object's raw pickled ``__dict__``; ``module_src`` is the embedded
    source text, kept verbatim (e.g. for re-export) and never executed.
    """

    class_name: str
    init_args: tuple
    init_kwargs: dict
    state: dict = field(repr=False)
    module_src: str = field(repr=False)
    version: int | None = None
    module_name: str | None = None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors ``state_dict()`` of the original module would return."""
        return module_state_dict(self.state)


class InertObject:
    """Stand-in for an allow-listed non-persistent class (``OSGDecoder``, ``Sequential``...).

    Instances are allocated without running any class code and just keep the
    pickled ``__dict__`` in ``state``.  ``qualified_name`` names the original class.
    """

    qualified_name: ClassVar[str] = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "InertObject":
        obj = super().__new__(cls)
        obj.args, obj.state = args, {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slot-state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise CheckpointFormatError(f"{self.qualified_name}: state is not a dict")
        self.state = state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return module_state_dict(self.state)

    def __repr__(self) -> str:
        return f"InertObject({self.qualified_name})"


# ------------------------------------------------------------------ allow-listed globals


def _record_persistent(meta: Any) -> PersistentRecord:
    """Replacement for ``torch_utils.persistence._reconstruct_persistent_obj``: record only."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise CheckpointFormatError("persistent object meta is not a {'type': 'class', ...} dict")
    name, src, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
    if not isinstance(name, str) or not isinstance(src, str) or not isinstance(state, dict):
        raise CheckpointFormatError("persistent object meta lacks class_name/module_src/state")
    version = meta.get("version")
    return PersistentRecord(
        class_name=name,
        init_args=tuple(_plain(state.get("_init_args", ()))),
        init_kwargs=_plain(state.get("_init_kwargs", {})),
        state=state,
        module_src=src,
        version=version if isinstance(version, int) else None,
    )


def _load_from_bytes(data: Any) -> torch.storage.TypedStorage:
    """``torch.storage._load_from_bytes``: a legacy torch.save stream of one storage."""
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointFormatError("storage payload is not bytes")
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsafeCheckpointError(f"embedded storage rejected by torch.load(weights_only=True): {first}") from exc
    if not isinstance(storage, torch.storage.TypedStorage):
        raise CheckpointFormatError("embedded storage stream did not hold a storage")
    return storage


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list, torch.Size)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise CheckpointFormatError(f"tensor {what} {value!r} is not a tuple of non-negative ints")
    return tuple(value)


def _make_rebuild_tensor(device: torch.device) -> Callable[..., torch.Tensor]:
    def rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, hooks: Any = None, metadata: Any = None) -> torch.Tensor:
        """``torch._utils._rebuild_tensor_v2`` with bounds checks; returns a fresh copy."""
        if not isinstance(storage, torch.storage.TypedStorage):
            raise CheckpointFormatError("tensor storage is not a torch storage")
        size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
        (offset,) = _int_tuple((offset,), "offset")
        if len(size) != len(stride) or hooks or metadata:
            raise CheckpointFormatError("tensor record has mismatched size/stride or hooks/metadata")
        flat = torch.empty(0, dtype=storage.dtype).set_(storage._untyped_storage)
        numel = math.prod(size)
        if numel > MAX_TENSOR_ELEMENTS:
            raise CheckpointFormatError(f"tensor of size {size} is implausibly large ({numel} elements, "
                                        f"more than {MAX_TENSOR_ELEMENTS})")
        if numel and offset + numel > flat.numel():
            raise CheckpointFormatError(f"tensor of size {size} lies outside its storage (it claims {numel} "
                                        f"elements; the storage holds {flat.numel()}, from offset {offset})")
        if numel and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= flat.numel():
            raise CheckpointFormatError(f"tensor of size {size} lies outside its storage")
        return flat.as_strided(size, stride, offset).clone().to(device)

    return rebuild_tensor


def _rebuild_parameter(data: Any, requires_grad: Any, hooks: Any, state: Any = None) -> torch.Tensor:
    """``_rebuild_parameter(_with_state)``: the plain tensor (no grad, no hooks, no attrs)."""
    if not isinstance(data, torch.Tensor) or hooks:
        raise CheckpointFormatError("parameter record does not wrap a plain tensor")
    return data


_NUMERIC_DTYPE = re.compile(r"[<>|=]?(\?|b1|[iu][1248]|f[248]|c(8|16))")


class _NumpyDType:
    """Inert ``numpy.dtype`` stand-in: numeric dtypes only, real dtype built by us."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(spec, str) or not _NUMERIC_DTYPE.fullmatch(spec):
            raise CheckpointFormatError(f"numpy dtype {spec!r} is not a plain numeric dtype")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state: Any) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if order not in ("<", ">", "|", "="):
            raise CheckpointFormatError(f"numpy dtype state {state!r} not understood")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


def _numpy_scalar(dtype: Any, data: Any) -> np.generic:
    """``numpy.core.multiarray.scalar``: decode one numeric value from raw bytes."""
    if not isinstance(dtype, _NumpyDType) or not isinstance(data, bytes) or len(data) != dtype.dtype.itemsize:
        raise CheckpointFormatError("numpy scalar record is malformed")
    return np.frombuffer(data, dtype=dtype.dtype, count=1)[0]


class _Global:
    """Callable handed to the unpickler; refuses ``BUILD`` so files cannot mutate it."""

    __slots__ = ("fn", "qualname")

    def __init__(self, fn: Callable[..., Any], qualname: str) -> None:
        self.fn, self.qualname = fn, qualname

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __setstate__(self, state: Any) -> None:
        raise UnsafeCheckpointError(f"pickle tried to modify global {self.qualname}")


_TORCH_DTYPES = {n: getattr(torch, n) for n in (
    "float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")}


def _torch_device(*args: Any) -> torch.device:
    if not all(isinstance(a, (str, int)) for a in args):
        raise CheckpointFormatError("torch.device arguments must be str/int")
    return torch.device(*args)


#: ``module.name`` -> what the unpickler gets (data types or our own functions).
ALLOWED_GLOBALS: dict[str, Any] = {
    "torch_utils.persistence._reconstruct_persistent_obj": _record_persistent,
    "torch._utils._rebuild_tensor_v2": None,  # bound per load (target device)
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.storage._load_from_bytes": _load_from_bytes,
    "torch.device": _torch_device,
    "torch.Size": lambda dims=(): torch.Size(_int_tuple(dims, "Size")),
    **{f"torch.{n}": d for n, d in _TORCH_DTYPES.items()},
    "collections.OrderedDict": dict,  # hook containers and the like -> plain dict
    "dnnlib.util.EasyDict": dict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "numpy.dtype": _NumpyDType,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
}

#: Non-persistent module classes a snapshot may hold; all become :class:`InertObject`.
STAND_IN_CLASSES: tuple[str, ...] = (
    "training.triplane.OSGDecoder",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    "training.volumetric_rendering.ray_sampler.RaySampler",
    *(f"torch.nn.modules.container.{n}" for n in
      ("Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict")),
    *(f"torch.nn.modules.activation.{n}" for n in
      ("Softplus", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "SiLU", "GELU")),
    "torch.nn.modules.linear.Identity",
    "torch.nn.modules.linear.Linear",
    "torch.nn.modules.conv.Conv2d",
)

_STAND_INS: dict[str, type] = {
    q: type(q.rsplit(".", 1)[1], (InertObject,), {"qualified_name": q, "__module__": __name__})
    for q in STAND_IN_CLASSES
}


class _SafeUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Python's own unpickler (its memo is a dict, so a huge memo index allocates nothing, unlike
    the C unpickler's array) whose ``find_class`` only knows the allow-list."""

    def __init__(self, file: BinaryIO, source: str, device: torch.device) -> None:
        super().__init__(file)
        self._source = source
        self._rebuild_tensor = _make_rebuild_tensor(device)

    def find_class(self, module: str, name: str) -> Any:
        qualname = f"{module}.{name}"
        if qualname in _STAND_INS:
            return _STAND_INS[qualname]
        if qualname not in ALLOWED_GLOBALS:
            raise UnsafeCheckpointError(
                f"{self._source}: refusing global '{qualname}' (not on the EG3D allow-list; nothing was executed)")
        target = ALLOWED_GLOBALS[qualname]
        if qualname == "torch._utils._rebuild_tensor_v2":
            target = self._rebuild_tensor
        if isinstance(target, (type, torch.dtype)):
            return target  # plain data types: classes cannot be BUILD-modified by pickle
        return _Global(target, qualname)

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointFormatError(f"{self._source}: unexpected persistent id (torch.save archive?)")


# ------------------------------------------------------------------------------- reading


def _open(path_or_fileobj: PathOrFile) -> tuple[BinaryIO, str, bool]:
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        return open(path_or_fileobj, "rb"), os.fspath(path_or_fileobj), True
    name = getattr(path_or_fileobj, "name", None)
    return path_or_fileobj, str(name) if name else "<file object>", False


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def read_snapshot_records(path_or_fileobj: PathOrFile, *, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Unpickle a snapshot safely, building none of our networks.

    Persistent objects come back as :class:`PersistentRecord`, other module
    objects as :class:`InertObject`, tensors fully materialised on ``device``;
    top-level dicts (e.g. ``training_set_kwargs``) become plain dicts.
    """
    device = torch.device(device)
    f, source, owned = _open(path_or_fileobj)
    try:
        head = f.read(4)
        if not head:
            raise CheckpointFormatError(f"{source}: file is empty (0 bytes), not an EG3D network pickle")
        if head.startswith(b"PK"):
            raise CheckpointFormatError(
                f"{source}: is a zip archive (torch.save format?), not an EG3D network pickle")
        stream: BinaryIO = f
        if f.seekable():
            f.seek(f.tell() - len(head))
        else:
            stream = io.BytesIO(head + f.read())
        try:
            data = _SafeUnpickler(stream, source, device).load()
        except (UnsafeCheckpointError, CheckpointFormatError) as exc:
            msg = str(exc)
            raise type(exc)(msg if msg.startswith(source) else f"{source}: {msg}") from exc
        except (EOFError, pickle.UnpicklingError) as exc:
            raise CheckpointFormatError(
                f"{source}: truncated or not a pickle ({_one_line(exc)})") from exc
        except Exception as exc:  # noqa: BLE001 - any decoding failure is a format error
            raise CheckpointFormatError(f"{source}: not a readable EG3D network pickle ({_one_line(exc)})") from exc
    finally:
        if owned:
            f.close()
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise CheckpointFormatError(f"{source}: top level is {type(data).__name__}, expected a dict of networks")
    return {k: _plain(v) for k, v in data.items()}


# ------------------------------------------------------------------------------ building


def _build_triplane(record: PersistentRecord, device: torch.device) -> torch.nn.Module:
    try:
        from .triplane import TriPlaneGenerator
    except ImportError as exc:
        raise ImportError(
            "cannot build 'TriPlaneGenerator' from the checkpoint: eg3d.triplane.TriPlaneGenerator "
            f"is not importable ({exc})") from exc
    check_generator_config(record.init_args, record.init_kwargs, record.state.get("rendering_kwargs"),
                           record.state.get("neural_rendering_resolution"))
    G = TriPlaneGenerator(*record.init_args, **record.init_kwargs)
    G.load_state_dict(record.state_dict(), strict=True)
    if "rendering_kwargs" in record.state:
        G.rendering_kwargs = _plain(record.state["rendering_kwargs"])
    if "neural_rendering_resolution" in record.state:
        G.neural_rendering_resolution = int(record.state["neural_rendering_resolution"])
    return G.eval().requires_grad_(False).to(device)


#: class_name -> builder(record, device) returning our module.  Extend to support more classes.
BUILDERS: dict[str, Callable[[PersistentRecord, torch.device], torch.nn.Module]] = {
    "TriPlaneGenerator": _build_triplane,
}


def load_network_pkl(path_or_fileobj: PathOrFile, *, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Safe drop-in for upstream ``legacy.load_network_pkl``; returns every top-level key.

    Top-level persistent records whose ``class_name`` is in :data:`BUILDERS` (e.g.
    ``G``/``G_ema`` -> :class:`eg3d.TriPlaneGenerator`, eval mode, no grad, on
    ``device``) are rebuilt; everything else (``D``, ``augment_pipe``, unknown
    classes) stays an inert :class:`PersistentRecord`.  Objects shared in the file
    (``G is G_ema``) stay shared.
    """
    device = torch.device(device)
    records = read_snapshot_records(path_or_fileobj, device=device)
    source = os.fspath(path_or_fileobj) if isinstance(path_or_fileobj, (str, os.PathLike)) else "<file object>"
    built: dict[int, Any] = {}
    out: dict[str, Any] = {}
    for key, value in records.items():
        if isinstance(value, PersistentRecord) and value.class_name in BUILDERS:
            if id(value) not in built:
                try:
                    built[id(value)] = BUILDERS[value.class_name](value, device)
                except (RuntimeError, TypeError, ValueError, CheckpointFormatError) as exc:
                    raise CheckpointFormatError(
                        f"{source}: '{key}' ({value.class_name}) does not fit our implementation "
                        f"({_one_line(exc)})") from exc
            value = built[id(value)]
        out[key] = value
    return out
