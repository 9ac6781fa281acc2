"""Safe EG3D snapshot reader: weights of tiny_G.pkl, hostile pickles, broken files."""
from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import eg3d
from eg3d import network_pkl
from eg3d.network_pkl import InertObject, PersistentRecord, read_snapshot_records

NEEDS_TRIPLANE = "eg3d.triplane not available yet"


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def tiny_pkl(eg3d_fixtures) -> Path:
    return eg3d_fixtures / "tiny_G.pkl"


@pytest.fixture(scope="module")
def parity(eg3d_fixtures) -> dict:
    return torch.load(eg3d_fixtures / "tiny_parity.pt", weights_only=True)


@pytest.fixture(scope="module")
def records(tiny_pkl) -> dict:
    return read_snapshot_records(tiny_pkl)


def _triplane():
    return pytest.importorskip("eg3d.triplane", reason=NEEDS_TRIPLANE)


def _assert_checksums(sd: dict, parity: dict) -> None:
    assert list(sd) == parity["state_dict_keys"]
    for key, ref in parity["state_dict_checksums"].items():
        v = sd[key]
        assert list(v.shape) == list(ref["shape"]), key
        assert str(v.dtype) == f"torch.{ref['dtype']}", key
        v64 = v.detach().double()
        tol = 1e-6 * ref["abs_sum"]
        assert abs(v64.sum().item() - ref["sum"]) <= tol, key
        assert abs(v64.abs().sum().item() - ref["abs_sum"]) <= tol, key
        assert abs(v64.square().sum().item() - ref["sq_sum"]) <= 1e-6 * ref["sq_sum"], key
        assert torch.equal(v.detach().flatten()[: ref["head"].numel()].cpu(), ref["head"]), key


# ------------------------------------------------------------------- crafting pickles


class _CraftPickler(pickle._Pickler):  # pure-Python pickler: lets us name any global
    """Writes objects carrying ``_pickle_as = 'module.name'`` as that global."""

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[types.FunctionType] = lambda self, obj: self.save_global(obj)

    def save_global(self, obj, name=None):
        target = getattr(obj, "_pickle_as", None)
        if not isinstance(target, str):
            return super().save_global(obj, name)
        module, _, qual = target.rpartition(".")
        self.write(pickle.GLOBAL + f"{module}\n{qual}\n".encode())
        self.memoize(obj)


def _fake_reconstruct(meta):  # never called: only its pickled name matters
    raise AssertionError("unreachable")


_fake_reconstruct._pickle_as = "torch_utils.persistence._reconstruct_persistent_obj"


class _FakePersistent:
    def __init__(self, meta: dict):
        self.meta = meta

    def __reduce__(self):
        return (_fake_reconstruct, (self.meta,))


def _persistent(class_name: str, state: dict, module_src: str) -> _FakePersistent:
    meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)
    return _FakePersistent(meta)


def _regraft(obj, module_src: str):
    """Turn read records back into picklable look-alikes, with a new ``module_src``."""
    if isinstance(obj, PersistentRecord):
        return _persistent(obj.class_name, _regraft(obj.state, module_src), module_src)
    if isinstance(obj, InertObject):
        cls = type(obj.qualified_name.rsplit(".", 1)[1], (), {"_pickle_as": obj.qualified_name})
        inst = cls()
        inst.__dict__.update(_regraft(obj.state, module_src))
        return inst
    if isinstance(obj, dict):
        return {k: _regraft(v, module_src) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_regraft(v, module_src) for v in obj)
    return obj


def _dump(obj, path: Path) -> Path:
    buf = io.BytesIO()
    _CraftPickler(buf, protocol=4).dump(obj)
    path.write_bytes(buf.getvalue())
    return path


def _payload(marker: Path) -> str:
    return f"import pathlib; pathlib.Path(r'{marker}').write_text('pwned')"


def _load_no_exec(path: Path) -> dict:
    """``load_network_pkl`` with exec/eval/compile made to explode meanwhile."""
    def boom(*args, **kwargs):
        raise AssertionError("loader tried to execute code")

    saved = {n: getattr(builtins, n) for n in ("exec", "eval", "compile")}
    try:
        for name in saved:
            setattr(builtins, name, boom)
        return eg3d.load_network_pkl(path)
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)


# ------------------------------------------------------------------------ record level


def test_records_reproduce_tiny_weights(records, parity):
    assert list(records) == parity["pkl_verification"]["top_level_keys"]
    G_ema = records["G_ema"]
    assert isinstance(G_ema, PersistentRecord) and G_ema.class_name == "TriPlaneGenerator"
    assert G_ema.init_args == tuple(parity["init_args"])
    assert G_ema.init_kwargs == parity["init_kwargs"]
    assert type(G_ema.init_kwargs["mapping_kwargs"]) is dict  # EasyDict -> dict
    assert G_ema.module_src == "# source omitted from fixture"
    assert G_ema.state["rendering_kwargs"] == parity["rendering_kwargs"]
    assert G_ema.state["neural_rendering_resolution"] == 32
    _assert_checksums(G_ema.state_dict(), parity)
    decoder = G_ema.state["_modules"]["decoder"]
    assert isinstance(decoder, InertObject) and decoder.qualified_name == "training.triplane.OSGDecoder"


def test_records_other_keys(records, parity):
    D = records["D"]
    assert isinstance(D, PersistentRecord) and D.class_name == "DualDiscriminator"
    assert D.init_kwargs == parity["D_init_kwargs"]
    sd = D.state_dict()
    assert sd and all(isinstance(v, torch.Tensor) for v in sd.values())
    tsk = records["training_set_kwargs"]
    assert type(tsk) is dict and tsk == parity["pkl_verification"]["training_set_kwargs"]
    assert records["augment_pipe"] is None
    G_sd, G_ema_sd = records["G"].state_dict(), records["G_ema"].state_dict()
    assert list(G_sd) == list(G_ema_sd) and all(torch.equal(G_sd[k], G_ema_sd[k]) for k in G_sd)
    fc = records["G_ema"].state["_modules"]["backbone"].state["_modules"]["mapping"].state["_modules"]["fc0"]
    assert isinstance(fc.state["weight_gain"], np.float64)


def test_records_from_file_object(tiny_pkl, parity):
    with open(tiny_pkl, "rb") as f:
        recs = read_snapshot_records(io.BytesIO(f.read()))
    _assert_checksums(recs["G_ema"].state_dict(), parity)


# ---------------------------------------------------------------------------- full load


def test_load_network_pkl_builds_generator(tiny_pkl, records, parity):
    _triplane()
    data = eg3d.load_network_pkl(tiny_pkl)
    assert list(data) == list(records)
    G = data["G_ema"]
    assert isinstance(G, eg3d.TriPlaneGenerator)
    assert data["G"] is G
    assert isinstance(data["D"], PersistentRecord)
    sd, ref = G.state_dict(), records["G_ema"].state_dict()
    assert list(sd) == list(ref)
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
    assert G.rendering_kwargs == parity["rendering_kwargs"]
    assert G.neural_rendering_resolution == 32
    assert not G.training and not any(p.requires_grad for p in G.parameters())


def test_guide_output_only_g_ema(tmp_path, records, parity):
    _triplane()
    path = _dump({"G_ema": _regraft(records["G_ema"], "# src")}, tmp_path / "last.pkl")
    data = eg3d.load_network_pkl(path)
    assert list(data) == ["G_ema"]
    _assert_checksums(data["G_ema"].state_dict(), parity)


def test_missing_generator_class_fails_clearly(tiny_pkl, monkeypatch):
    monkeypatch.setitem(sys.modules, "eg3d.triplane", None)
    with pytest.raises(ImportError, match="TriPlaneGenerator"):
        eg3d.load_network_pkl(tiny_pkl)


def test_builder_registry_and_device(tiny_pkl, monkeypatch):
    calls = []

    def builder(record, device):
        calls.append(record)
        module = torch.nn.Module()
        for i, v in enumerate(record.state_dict().values()):
            module.register_buffer(f"b{i}", v.to(device))
        return module

    monkeypatch.setitem(network_pkl.BUILDERS, "TriPlaneGenerator", builder)
    data = eg3d.load_network_pkl(tiny_pkl, device="cpu")
    assert len(calls) == 1 and data["G"] is data["G_ema"]  # shared object built once
    assert all(b.device.type == "cpu" for b in data["G_ema"].buffers())


# ---------------------------------------------------------------------- hostile files


def test_os_system_refused(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    blob = b"\x80\x04cos\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR."
    # Sanity: with a plain pickle.loads this would call os.system.
    seen = []
    monkeypatch.setattr(os, "system", seen.append)
    pickle.loads(blob)
    assert seen == [f"touch {marker}"]
    monkeypatch.undo()

    path = tmp_path / "evil.pkl"
    path.write_bytes(blob)
    with pytest.raises(eg3d.UnsafeCheckpointError, match=r"os\.system") as info:
        eg3d.load_network_pkl(path)
    assert isinstance(info.value, pickle.UnpicklingError)
    assert not marker.exists()


class _Evil:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda m: _Evil(eval, f"open(r'{m}', 'w')"), "builtins.eval"),
        (lambda m: _Evil(exec, f"open(r'{m}', 'w')"), "builtins.exec"),
        (lambda m: _Evil(subprocess.Popen, ["touch", str(m)]), "subprocess.Popen"),
        (lambda m: _Evil(os.system, f"touch {m}"), f"{os.system.__module__}.system"),
        (lambda m: _Evil(getattr, "os", "system"), "builtins.getattr"),
        (lambda m: _Evil(torch.load, str(m)), "torch.serialization.load"),
        (lambda m: {"G_ema": _persistent("X", {"_modules": {"a": _Evil(eval, "1")}}, "")}, "builtins.eval"),
    ],
)
def test_hostile_globals_refused(tmp_path, make, name):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    _dump(make(marker), path)
    with pytest.raises(eg3d.UnsafeCheckpointError, match=name.replace(".", r"\.")):
        _load_no_exec(path)
    assert not marker.exists()


@pytest.mark.parametrize("qualname", ["torch.load", "torch._C._nn.gelu", "torch.hub.load", "numpy.load",
                                      "training.triplane.TriPlaneGenerator", "collections.deque"])
def test_unknown_globals_refused(tmp_path, qualname):
    module, _, name = qualname.rpartition(".")
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"\x80\x04c" + f"{module}\n{name}\n".encode() + b")R.")
    with pytest.raises(eg3d.UnsafeCheckpointError, match=qualname.replace(".", r"\.")):
        eg3d.load_network_pkl(path)


def test_module_src_never_executed_unknown_class(tmp_path):
    marker = tmp_path / "marker"
    state = {"_parameters": {"w": torch.arange(3.0)}, "_buffers": {}, "_modules": {},
             "_init_args": (1,), "_init_kwargs": {"k": [1, 2]}}
    path = _dump({"G_ema": _persistent("EvilNet", state, _payload(marker)), "x": 3}, tmp_path / "evil.pkl")
    data = _load_no_exec(path)
    rec = data["G_ema"]
    assert isinstance(rec, PersistentRecord) and rec.class_name == "EvilNet"
    assert rec.module_src == _payload(marker)
    assert rec.init_args == (1,) and rec.init_kwargs == {"k": [1, 2]}
    assert torch.equal(rec.state_dict()["w"], torch.arange(3.0))
    assert data["x"] == 3
    assert not marker.exists()


def test_module_src_never_executed_generator(tmp_path, records, parity):
    _triplane()
    marker = tmp_path / "marker"
    path = _dump({"G_ema": _regraft(records["G_ema"], _payload(marker)),
                  "D": _regraft(records["D"], _payload(marker))}, tmp_path / "evil.pkl")
    data = _load_no_exec(path)
    assert not marker.exists()
    assert isinstance(data["G_ema"], eg3d.TriPlaneGenerator)
    assert data["D"].module_src == _payload(marker)
    _assert_checksums(data["G_ema"].state_dict(), parity)


def test_tensor_outside_storage_refused(tmp_path):
    storage = torch.arange(4.0)._typed_storage()
    # A tensor record claiming 100 elements over a 4-element storage.
    evil = _Evil(torch._utils._rebuild_tensor_v2, storage, 0, (100,), (1,), False, {})
    path = _dump({"t": evil}, tmp_path / "t.pkl")
    with pytest.raises(eg3d.CheckpointFormatError, match="outside its storage"):
        read_snapshot_records(path)


# --------------------------------------------------------------------------- bad files


def _bad_files(tmp_path: Path, tiny_pkl: Path) -> dict[str, Path]:
    files = {
        "empty": b"",
        "truncated": tiny_pkl.read_bytes()[:1000],
        "random": b"\xde" + np.random.default_rng(0).bytes(4095),
        "not_dict": pickle.dumps([1, 2, 3], protocol=4),
    }
    buf = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buf)
    files["torch_zip"] = buf.getvalue()
    out = {}
    for name, blob in files.items():
        out[name] = tmp_path / f"{name}.pkl"
        out[name].write_bytes(blob)
    return out


@pytest.mark.parametrize("kind", ["empty", "truncated", "random", "not_dict", "torch_zip"])
def test_bad_files(tmp_path, tiny_pkl, kind):
    path = _bad_files(tmp_path, tiny_pkl)[kind]
    with pytest.raises(eg3d.CheckpointFormatError) as info:
        eg3d.load_network_pkl(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        eg3d.load_network_pkl(tmp_path / "nope.pkl")


def test_allowed_globals_cannot_be_modified(tmp_path):
    path = tmp_path / "build.pkl"
    # BUILD (b) with a dict state applied to an allow-listed function.
    path.write_bytes(b"\x80\x04ctorch.storage\n_load_from_bytes\n}b.")
    with pytest.raises(eg3d.UnsafeCheckpointError, match="modify"):
        eg3d.load_network_pkl(path)


# ------------------------------------------------------------- memory and time bounds


def _tiny_generator_record(**changes) -> _FakePersistent:
    """A TriPlaneGenerator record with the tiny configuration's kwargs (no weights: the bounds
    are checked before anything is built) and `changes` applied to its state."""
    from eg3d import configs

    kwargs = configs.tiny()
    state = {"_init_args": (), "_init_kwargs": kwargs, "rendering_kwargs": dict(kwargs["rendering_kwargs"]),
             "neural_rendering_resolution": 16, "_parameters": {}, "_buffers": {}, "_modules": {}}
    for key, value in changes.items():
        if key.startswith("mapping_kwargs."):
            kwargs["mapping_kwargs"][key.split(".", 1)[1]] = value
        elif key in state:
            state[key] = value
        else:
            kwargs[key] = value
    return _persistent("TriPlaneGenerator", state, "")


@pytest.mark.parametrize("changes, field", [
    ({"w_dim": 40000}, "w_dim"),
    ({"mapping_kwargs.num_layers": 17}, "num_layers"),
    ({"neural_rendering_resolution": 100000}, "neural_rendering_resolution"),
    ({"neural_rendering_resolution": "abc"}, "neural_rendering_resolution"),
    ({"rendering_kwargs": "x"}, "rendering_kwargs"),
    ({"rendering_kwargs": {}}, "rendering_kwargs"),
    ({"channel_max": 1.5}, "channel_max"),
])
def test_implausible_generator_config_refused_before_building(tmp_path, changes, field):
    """Constructor kwargs and rendering options come from the file (no hash covers them): each is
    bounded before TriPlaneGenerator is built (w_dim=40000 would take ~19 GB)."""
    path = _dump({"G_ema": _tiny_generator_record(**changes)}, tmp_path / "g.pkl")
    with pytest.raises(eg3d.CheckpointFormatError, match=field) as info:
        eg3d.load_network_pkl(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_constructor_value_error_is_a_format_error(tmp_path):
    path = _dump({"G_ema": _tiny_generator_record(architecture="resnet")}, tmp_path / "g.pkl")
    with pytest.raises(eg3d.CheckpointFormatError, match="does not fit our implementation"):
        eg3d.load_network_pkl(path)


@pytest.mark.parametrize("size, stride, match", [
    ((4096, 4096), (0, 0), "outside its storage"),  # a 4-byte storage posing as 64 MiB
    ((1 << 15, 1 << 15), (0, 0), "implausibly large"),
])
def test_stride_zero_tensor_refused_before_materialising(tmp_path, size, stride, match):
    storage = torch.ones(1)._typed_storage()
    evil = _Evil(torch._utils._rebuild_tensor_v2, storage, 0, size, stride, False, {})
    path = _dump({"t": evil}, tmp_path / "t.pkl")
    with pytest.raises(eg3d.CheckpointFormatError, match=match):
        read_snapshot_records(path)


def test_huge_memo_index_allocates_nothing(tmp_path):
    """An 11-byte pickle storing into memo slot 2**24: the C unpickler grows its memo array to
    that index (256 MiB here, 4.7 GB for larger indices); ours keeps a dict."""
    import struct
    import tracemalloc

    path = tmp_path / "memo.pkl"
    path.write_bytes(b"\x80\x04N" + b"r" + struct.pack("<I", 1 << 24) + b".")
    tracemalloc.start()
    try:
        with pytest.raises(eg3d.CheckpointFormatError, match="top level is NoneType"):
            read_snapshot_records(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


def test_self_referencing_data_refused(tmp_path):
    loop: list = []
    loop.append(loop)
    path = _dump({"training_set_kwargs": loop}, tmp_path / "loop.pkl")
    with pytest.raises(eg3d.CheckpointFormatError, match="nested deeper than"):
        read_snapshot_records(path)


def test_cyclic_module_tree_refused():
    state = {"_parameters": {}, "_buffers": {}, "_modules": {}}
    record = PersistentRecord("X", (), {}, state, "")
    state["_modules"]["again"] = record  # a module that contains itself
    with pytest.raises(eg3d.CheckpointFormatError, match="deeper than"):
        record.state_dict()
