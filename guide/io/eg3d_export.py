"""Write a generator back into the official EG3D snapshot format (``network-snapshot-*.pkl``).

The user's original pickle (``like``) is read as an inert tree (:mod:`guide.io.pickle_tree`,
same allow-list as :mod:`eg3d.network_pkl`, nothing executed). In ``G_ema`` (and ``G`` when
the file has it) every parameter/buffer record gets a new storage holding our generator's
tensor; everything else — the records' ``module_src``, class names, constructor kwargs,
non-tensor attributes, ``D``, ``augment_pipe``, ``training_set_kwargs``, key order — is
written back unchanged, with the same globals only. Official tools (``gen_samples.py``,
the visualizer, GUIDE's evaluation scripts) then load the result with their own code.

Tensor storages are written exactly as ``torch.TypedStorage.__reduce__`` does (a legacy
``torch.save`` stream passed to ``torch.storage._load_from_bytes``). Before the file is put
in place it is read back with the safe reader and compared with the generator, bit for bit.

The copied ``module_src`` is Python source that NVIDIA's own loader executes (ours never
does): the export says so in one line whenever the source pickle carries any.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import torch

from eg3d.network_pkl import (
    ALLOWED_GLOBALS,
    STAND_IN_CLASSES,
    CheckpointFormatError,
    PersistentRecord,
    UnsafeCheckpointError,
    read_snapshot_records,
)

from .atomic import atomic_path
from .errors import CorruptCheckpointError, IncompatibleGeneratorError, MissingCheckpointError
from .generator_io import generator_spec
from .pickle_tree import NO_STATE, Call, iter_nodes, read_pickle_tree, tree_globals, write_pickle_tree

__all__ = ["embedded_source_classes", "export_eg3d_pkl", "read_snapshot_tree", "snapshot_tensor_nodes", "is_eg3d_global"]

PathLike = Union[str, "os.PathLike[str]"]

PERSISTENT = "torch_utils.persistence._reconstruct_persistent_obj"
REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2"
REBUILD_PARAMETER = ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state")
LOAD_FROM_BYTES = "torch.storage._load_from_bytes"
GENERATOR_KEYS = ("G", "G_ema")


def is_eg3d_global(qualname: str) -> bool:
    """The allow-list of :mod:`eg3d.network_pkl` (globals plus stand-in module classes)."""
    return qualname in ALLOWED_GLOBALS or qualname in STAND_IN_CLASSES


def read_snapshot_tree(path: PathLike) -> Dict[str, Any]:
    """The snapshot's top-level dict as an inert node tree (see :mod:`guide.io.pickle_tree`)."""
    path = Path(path)
    if not path.is_file():
        raise MissingCheckpointError(f"{path}: no such EG3D snapshot")
    try:
        tree = read_pickle_tree(path, allowed=is_eg3d_global)
    except (UnsafeCheckpointError, CheckpointFormatError) as exc:
        raise CorruptCheckpointError(" ".join(str(exc).split())) from None
    if type(tree) is not dict or not all(isinstance(k, str) for k in tree):
        raise CorruptCheckpointError(f"{path}: top level is not a dict of networks")
    return tree


# ------------------------------------------------------------------------ record walking


def _persistent_meta(node: Any) -> Optional[dict]:
    if isinstance(node, Call) and node.qualname == PERSISTENT and len(node.args) == 1 and type(node.args[0]) is dict:
        return node.args[0]
    return None


def embedded_source_classes(tree: Any) -> List[str]:
    """Class names of the persistent records in `tree` that carry Python source (``module_src``)."""
    names = set()
    for node in iter_nodes(tree):
        meta = _persistent_meta(node)
        if meta is not None and isinstance(meta.get("module_src"), str) and meta["module_src"].strip():
            names.add(str(meta.get("class_name")))
    return sorted(names)


def _module_state(node: Any, where: str) -> dict:
    """The pickled ``__dict__`` of a persistent record or of a stand-in module object."""
    meta = _persistent_meta(node)
    state = meta.get("state") if meta is not None else (node.state if isinstance(node, Call) else None)
    if isinstance(state, tuple) and len(state) == 2:  # (dict, slot state)
        state = state[0]
    if type(state) is not dict:
        raise IncompatibleGeneratorError(f"{where}: not a recorded module")
    return state


def _entries(container: Any, where: str) -> list:
    """(key, value) pairs of a pickled dict, OrderedDict or EasyDict node."""
    if container is None:
        return []
    if type(container) is dict:
        return list(container.items())
    if isinstance(container, Call) and not container.args and not container.listitems:
        return list(container.dictitems)
    raise IncompatibleGeneratorError(f"{where}: expected a dict")


def _names(container: Any) -> set:
    if isinstance(container, (set, frozenset)):
        return set(container)
    if isinstance(container, Call) and container.args and isinstance(container.args[0], (list, tuple, set)):
        return set(container.args[0])  # builtins.set([...]) from protocol < 4
    return set()


def _tensor_call(value: Any, where: str) -> Call:
    """The ``_rebuild_tensor_v2`` call of a tensor or parameter record."""
    if isinstance(value, Call) and value.qualname in REBUILD_PARAMETER and value.args:
        value = value.args[0]
    if not (isinstance(value, Call) and value.qualname == REBUILD_TENSOR and len(value.args) >= 6):
        raise IncompatibleGeneratorError(f"{where}: not a tensor record")
    storage = value.args[0]
    if not (isinstance(storage, Call) and storage.qualname == LOAD_FROM_BYTES
            and len(storage.args) == 1 and isinstance(storage.args[0], bytes)):
        raise IncompatibleGeneratorError(f"{where}: tensor storage is not a _load_from_bytes record")
    return value


def snapshot_tensor_nodes(module_node: Any, where: str = "G_ema") -> Dict[str, Call]:
    """``state_dict()`` key -> tensor record, in torch's order (parameters, persistent
    buffers, then children), mirroring :func:`eg3d.network_pkl.module_state_dict`."""
    out: Dict[str, Call] = {}
    stack = [("", module_node)]
    while stack:
        prefix, node = stack.pop()
        state = _module_state(node, f"{where}:{prefix or '<root>'}")
        skip = _names(state.get("_non_persistent_buffers_set"))
        for group, skipped in (("_parameters", set()), ("_buffers", skip)):
            for name, value in _entries(state.get(group), f"{where}:{prefix}{group}"):
                if value is not None and name not in skipped:
                    out[prefix + name] = _tensor_call(value, f"{where}:{prefix}{name}")
        children = [(f"{prefix}{n}.", c) for n, c in _entries(state.get("_modules"), f"{where}:{prefix}_modules")
                    if c is not None]
        stack.extend(reversed(children))
    return out


def _plain(node: Any) -> Any:
    """Small config subtrees (kwargs dicts) as plain Python values for comparison."""
    if type(node) is dict or (isinstance(node, Call) and not node.args and not node.listitems
                              and node.state is NO_STATE):
        return {k: _plain(v) for k, v in _entries(node, "config")}
    if type(node) in (list, tuple):
        return type(node)(_plain(v) for v in node)
    return node


# ------------------------------------------------------------------------ tensor swapping


def _decode_storage(payload: bytes, where: str) -> torch.storage.TypedStorage:
    try:
        storage = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a damaged record
        raise CorruptCheckpointError(f"{where}: tensor storage cannot be decoded ({type(exc).__name__})") from None
    if not isinstance(storage, torch.storage.TypedStorage):
        raise CorruptCheckpointError(f"{where}: tensor storage record holds no storage")
    return storage


def _storage_payload(tensor: torch.Tensor) -> bytes:
    """What ``TypedStorage.__reduce__`` pickles: a legacy ``torch.save`` of a compact storage."""
    compact = tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format)
    storage = torch.storage.TypedStorage(wrap_storage=compact.untyped_storage(), dtype=compact.dtype, _internal=True)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.save(storage, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def _contiguous_strides(size: tuple) -> tuple:
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= max(int(n), 1)
    return tuple(reversed(strides))


def _swap_tensor(record: Call, new: torch.Tensor, where: str) -> None:
    storage_call, offset, size, stride = record.args[:4]
    old = _decode_storage(storage_call.args[0], where)
    if tuple(new.shape) != tuple(size):
        raise IncompatibleGeneratorError(f"{where}: shape {tuple(new.shape)} does not fit {tuple(size)} in the snapshot")
    if new.dtype != old.dtype:
        raise IncompatibleGeneratorError(f"{where}: dtype {new.dtype} does not match {old.dtype} in the snapshot")
    if offset != 0 or tuple(stride) != _contiguous_strides(tuple(size)):
        offset, stride = 0, _contiguous_strides(tuple(size))
    new_storage = Call(storage_call.func, (_storage_payload(new),))
    record.args = (new_storage, offset, size, stride, *record.args[4:])


def _generator_tensors(generator: Union[torch.nn.Module, Mapping[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    if isinstance(generator, torch.nn.Module):
        return dict(generator.state_dict())
    if isinstance(generator, Mapping) and all(isinstance(v, torch.Tensor) for v in generator.values()):
        return dict(generator)
    raise TypeError("generator must be an nn.Module or a mapping of state_dict tensors")


def _check_config(generator: Any, state: dict, key: str, like: Path) -> None:
    """Refuse to pair our tensors with a snapshot built from different constructor arguments."""
    if not isinstance(generator, torch.nn.Module):
        return
    try:
        spec = generator_spec(generator)
    except ValueError:
        return  # no recorded kwargs: keys, shapes and dtypes are still checked
    theirs = _plain(state.get("_init_kwargs", {}))
    if spec.init_kwargs != theirs:
        differ = sorted(k for k in set(spec.init_kwargs) | set(theirs) if spec.init_kwargs.get(k) != theirs.get(k))
        raise IncompatibleGeneratorError(
            f"the generator's constructor arguments differ from {key} in {like} (keys: {', '.join(differ)}); "
            "export into a snapshot of the same configuration")
    ours_rk, theirs_rk = spec.rendering_kwargs, _plain(state.get("rendering_kwargs"))
    if theirs_rk is not None and ours_rk != theirs_rk:
        differ = sorted(k for k in set(ours_rk) | set(theirs_rk) if ours_rk.get(k) != theirs_rk.get(k))
        raise IncompatibleGeneratorError(
            f"the generator's rendering_kwargs differ from {key} in {like} (keys: {', '.join(differ)})")


def _swap_generator(node: Any, tensors: Dict[str, torch.Tensor], key: str, like: Path, generator: Any) -> None:
    meta = _persistent_meta(node)
    if meta is None or meta.get("class_name") != "TriPlaneGenerator":
        raise IncompatibleGeneratorError(f"{like}: '{key}' is not a TriPlaneGenerator record")
    _check_config(generator, _module_state(node, key), key, like)
    records = snapshot_tensor_nodes(node, key)
    if set(records) != set(tensors):
        missing = [k for k in records if k not in tensors]
        extra = [k for k in tensors if k not in records]
        detail = "; ".join(filter(None, [
            f"missing {', '.join(missing[:5])}" if missing else "",
            f"unexpected {', '.join(extra[:5])}" if extra else "",
        ]))
        raise IncompatibleGeneratorError(f"the generator's state_dict does not match {key} in {like}: {detail}")
    for name, record in records.items():
        _swap_tensor(record, tensors[name], f"{key}.{name}")


# --------------------------------------------------------------------------- verifying


def _verify(path: Path, keys: list, tensors: Dict[str, torch.Tensor], allowed_globals: set) -> None:
    written = tree_globals(read_pickle_tree(path, allowed=is_eg3d_global))
    if not written <= allowed_globals:
        raise RuntimeError(f"export introduced new globals: {sorted(written - allowed_globals)}")
    records = read_snapshot_records(path)
    for key in keys:
        record = records.get(key)
        if not isinstance(record, PersistentRecord):
            raise RuntimeError(f"exported {key} does not read back as a persistent record")
        got = record.state_dict()
        for name, want in tensors.items():
            have = got.get(name)
            if have is None or have.dtype != want.dtype or not torch.equal(have, want.detach().cpu()):
                raise RuntimeError(f"exported {key}.{name} does not read back bit-identically")


# ---------------------------------------------------------------------------- public API


def export_eg3d_pkl(
    generator: Union[torch.nn.Module, Mapping[str, torch.Tensor]],
    *,
    like: PathLike,
    out: PathLike,
    verify: bool = True,
    log: Optional[Callable[[str], None]] = None,
) -> Path:
    """Write ``generator``'s weights as an official EG3D snapshot shaped like ``like``.

    ``generator`` is our ``TriPlaneGenerator`` (or its ``state_dict``); its keys, shapes and
    dtypes must equal ``like``'s ``G_ema`` and, when the generator records its constructor
    kwargs, so must those and ``rendering_kwargs``. ``G_ema`` and ``G`` (if present) get
    the new tensors; all other content of ``like`` is copied unchanged. The file is written
    atomically; with ``verify`` it is first read back with :mod:`eg3d.network_pkl` and
    compared bit for bit. When ``like`` embeds Python source, one line saying that the copy
    carries it goes to ``log`` (default: a warning). Returns the output path.
    """
    like, out = Path(like), Path(out)
    tensors = _generator_tensors(generator)
    tree = read_snapshot_tree(like)
    sources = embedded_source_classes(tree)
    if "G_ema" not in tree:
        raise IncompatibleGeneratorError(f"{like}: has no 'G_ema' (keys: {', '.join(tree)})")
    original_globals = tree_globals(tree)
    keys = [k for k in GENERATOR_KEYS if tree.get(k) is not None]
    done: set = set()
    for key in keys:
        if id(tree[key]) not in done:  # G and G_ema may be one shared record
            _swap_generator(tree[key], tensors, key, like, generator)
            done.add(id(tree[key]))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            write_pickle_tree(tree, f)
        if verify:
            _verify(tmp, keys, tensors, original_globals)
    if sources:
        note = (f"note: {out.name} carries the Python source embedded in {like.name} ({', '.join(sources)}) "
                f"verbatim; NVIDIA's loader executes it, so load {out.name} there only if you trust {like.name}")
        (log or (lambda m: warnings.warn(m, stacklevel=3)))(note)
    return out
