"""Export to the official EG3D snapshot format, with tiny_G.pkl as the template (read in place)."""
import copy
import io
import os
import pickle
import pickletools

import numpy as np
import pytest
import torch

import eg3d
from eg3d.network_pkl import InertObject, PersistentRecord, read_snapshot_records
from guide.io import (
    CorruptCheckpointError,
    IncompatibleGeneratorError,
    MissingCheckpointError,
    export_eg3d_pkl,
)
from guide.io import eg3d_export


@pytest.fixture(scope="module")
def unlearned(tiny_pkl):
    """tiny_G.pkl's G_ema with every parameter and buffer changed."""
    G = eg3d.load_network_pkl(tiny_pkl)["G_ema"]
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for t in G.state_dict().values():
            t.add_(torch.randn(t.shape, generator=gen) * 0.05)
    return G


@pytest.fixture(scope="module")
def exported(unlearned, tiny_pkl, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "network-snapshot-unlearned.pkl"
    assert export_eg3d_pkl(unlearned, like=tiny_pkl, out=out) == out
    return out


def pickle_globals(path) -> set:
    """Globals a pickle references, from its opcodes (GLOBAL, or STACK_GLOBAL's two strings)."""
    memo, pushed, found = {}, [], set()
    for op, arg, _ in pickletools.genops(path.read_bytes()):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(arg)
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(arg))
        elif op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif op.name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
            pushed.append(None)
        else:
            pushed.append(None)
    return found


def compare_records(a, b, where="", tensor_diffs=None):
    """Walk two record trees: equal except tensor values (which are collected)."""
    assert type(a) is type(b), where
    if isinstance(a, PersistentRecord):
        assert (a.class_name, a.module_src, a.version, a.init_args, a.init_kwargs) == \
               (b.class_name, b.module_src, b.version, b.init_args, b.init_kwargs), where
        compare_records(a.state, b.state, f"{where}<{a.class_name}>", tensor_diffs)
    elif isinstance(a, InertObject):
        assert a.qualified_name == b.qualified_name and a.args == b.args, where
        compare_records(a.state, b.state, f"{where}<{a.qualified_name}>", tensor_diffs)
    elif isinstance(a, dict):
        assert list(a) == list(b), where  # same keys, same order
        for k in a:
            compare_records(a[k], b[k], f"{where}.{k}", tensor_diffs)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            compare_records(x, y, f"{where}[{i}]", tensor_diffs)
    elif isinstance(a, torch.Tensor):
        assert (a.shape, a.dtype, a.stride(), a.requires_grad) == (b.shape, b.dtype, b.stride(), b.requires_grad), where
        if not torch.equal(a, b):
            tensor_diffs.append(where)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a == b, where
    else:
        assert a == b, where


def test_export_carries_the_new_weights(exported, unlearned):
    records = read_snapshot_records(exported)
    want = unlearned.state_dict()
    for key in ("G", "G_ema"):
        got = records[key].state_dict()
        assert list(got) == list(want)
        for name, t in want.items():
            assert got[name].dtype == t.dtype and torch.equal(got[name], t), f"{key}.{name}"
    assert records["G"] is records["G_ema"]  # shared in the template, shared in the export
    G = eg3d.load_network_pkl(exported)["G_ema"]
    for name, t in want.items():
        assert torch.equal(G.state_dict()[name], t)


def test_export_keeps_the_record_structure(exported, tiny_pkl, unlearned):
    before, after = read_snapshot_records(tiny_pkl), read_snapshot_records(exported)
    assert list(before) == list(after) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    diffs: list = []
    compare_records(before, after, "", diffs)
    # exactly the G_ema tensors that changed: every parameter plus w_avg; D untouched
    changed = {n for n, t in unlearned.state_dict().items()
               if not torch.equal(t, before["G_ema"].state_dict()[n])}
    by_key = {key: [d for d in diffs if d.startswith(f".{key}<")] for key in before}
    assert len(changed) == len(unlearned.state_dict())  # every tensor was changed
    assert len(by_key["G"]) == len(by_key["G_ema"]) == len(changed)
    assert len(diffs) == 2 * len(changed)  # nothing outside G / G_ema (D, training_set_kwargs) differs


def test_export_adds_no_globals(exported, tiny_pkl):
    assert pickle_globals(exported) == pickle_globals(tiny_pkl)
    assert "torch_utils.persistence._reconstruct_persistent_obj" in pickle_globals(exported)


class _Stub:
    """Stand-in for upstream classes when loading the export the way upstream does."""


class _EasyDict(dict):
    pass


class UpstreamStyleUnpickler(pickle.Unpickler):
    """Loads with the real torch/numpy globals (as EG3D's legacy.load_network_pkl does);
    only persistence/dnnlib/training, which are not installed here, are stubbed."""

    def find_class(self, module, name):
        if (module, name) == ("torch_utils.persistence", "_reconstruct_persistent_obj"):
            return lambda meta: ("persistent", meta)
        if (module, name) == ("dnnlib.util", "EasyDict"):
            return _EasyDict
        if module.startswith("training."):
            return type(name, (_Stub,), {})
        return super().find_class(module, name)


def _upstream_params(obj, prefix=""):
    state = obj[1]["state"] if isinstance(obj, tuple) else obj.__dict__
    out = {prefix + k: v for k, v in state["_parameters"].items() if v is not None}
    out.update({prefix + k: v for k, v in state["_buffers"].items() if v is not None})
    for name, child in state["_modules"].items():
        out.update(_upstream_params(child, f"{prefix}{name}."))
    return out


def test_export_loads_with_the_real_torch_machinery(exported, unlearned):
    data = UpstreamStyleUnpickler(io.BytesIO(exported.read_bytes())).load()
    kind, meta = data["G_ema"]
    assert kind == "persistent" and meta["class_name"] == "TriPlaneGenerator" and meta["version"] == 6
    assert isinstance(meta["state"]["_init_kwargs"]["mapping_kwargs"], _EasyDict)
    params = _upstream_params(data["G_ema"])
    want = unlearned.state_dict()
    assert set(params) == set(want)
    for name, t in want.items():
        assert torch.equal(params[name], t), name
    w = params["backbone.synthesis.b4.conv1.weight"]
    assert isinstance(w, torch.nn.Parameter) and not w.requires_grad


def test_export_from_state_dict_and_unchanged_round_trip(tiny_pkl, pkl_generator, tmp_path):
    out = export_eg3d_pkl(pkl_generator.state_dict(), like=tiny_pkl, out=tmp_path / "same.pkl")
    diffs: list = []
    compare_records(read_snapshot_records(tiny_pkl), read_snapshot_records(out), "", diffs)
    assert diffs == []


def test_incompatible_generators_are_refused(tiny_pkl, pkl_generator, tmp_path):
    from eg3d import configs

    other = eg3d.TriPlaneGenerator(**configs.tiny())  # 128 px, 2X super-resolution
    with pytest.raises(IncompatibleGeneratorError, match="constructor arguments"):
        export_eg3d_pkl(other, like=tiny_pkl, out=tmp_path / "x.pkl")
    with pytest.raises(IncompatibleGeneratorError, match="does not match"):
        export_eg3d_pkl(other.state_dict(), like=tiny_pkl, out=tmp_path / "x.pkl")
    sd = {k: v.double() if v.is_floating_point() else v for k, v in pkl_generator.state_dict().items()}
    with pytest.raises(IncompatibleGeneratorError, match="dtype"):
        export_eg3d_pkl(sd, like=tiny_pkl, out=tmp_path / "x.pkl")
    changed = copy.deepcopy(pkl_generator)
    changed.rendering_kwargs = {**changed.rendering_kwargs, "ray_start": 1.0}
    with pytest.raises(IncompatibleGeneratorError, match="rendering_kwargs"):
        export_eg3d_pkl(changed, like=tiny_pkl, out=tmp_path / "x.pkl")
    assert not (tmp_path / "x.pkl").exists()
    with pytest.raises(MissingCheckpointError):
        export_eg3d_pkl(pkl_generator, like=tmp_path / "absent.pkl", out=tmp_path / "x.pkl")


def test_unsafe_or_broken_template_is_refused(tmp_path, pkl_generator, tiny_pkl):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": os.getcwd}, protocol=4))
    with pytest.raises(CorruptCheckpointError, match="refusing global"):
        export_eg3d_pkl(pkl_generator, like=evil, out=tmp_path / "x.pkl")
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(tiny_pkl.read_bytes()[:100_000])
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        export_eg3d_pkl(pkl_generator, like=cut, out=tmp_path / "x.pkl")


def test_interrupted_export_leaves_nothing(tiny_pkl, pkl_generator, tmp_path, monkeypatch):
    def crash(tree, f):
        f.write(b"\x80\x04partial")
        raise KeyboardInterrupt("simulated crash mid-write")

    monkeypatch.setattr(eg3d_export, "write_pickle_tree", crash)
    with pytest.raises(KeyboardInterrupt):
        export_eg3d_pkl(pkl_generator, like=tiny_pkl, out=tmp_path / "out.pkl")
    assert list(tmp_path.iterdir()) == []


def test_export_says_in_one_line_that_it_copies_embedded_source(unlearned, tiny_pkl, tmp_path):
    """tiny_G.pkl's records carry module_src (as every official snapshot does); NVIDIA's loader
    executes it, so the copy in the export is announced once, naming the classes."""
    records = read_snapshot_records(tiny_pkl)
    carrying = sorted({r.class_name for r in records.values() if isinstance(r, PersistentRecord) and r.module_src})
    assert carrying  # the template does embed source
    lines = []
    export_eg3d_pkl(unlearned, like=tiny_pkl, out=tmp_path / "g.pkl", log=lines.append, verify=False)
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "executes it" in lines[0] and all(name in lines[0] for name in carrying)
