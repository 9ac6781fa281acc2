"""Inert pickle trees: faithful re-emission, nothing executed, malformed input refused."""
import collections
import io
import pickle

import pytest

from eg3d.network_pkl import CheckpointFormatError, UnsafeCheckpointError
from guide.io.pickle_tree import Call, Global, dumps_pickle_tree, read_pickle_tree, tree_globals


def _tree(data: bytes, allowed=lambda q: True):
    return read_pickle_tree(io.BytesIO(data), allowed=allowed)


def test_tiny_snapshot_round_trips_byte_for_byte(tiny_pkl):
    original = tiny_pkl.read_bytes()
    tree = read_pickle_tree(tiny_pkl, allowed=lambda q: True)
    assert dumps_pickle_tree(tree) == original
    assert "torch_utils.persistence._reconstruct_persistent_obj" in tree_globals(tree)
    assert isinstance(tree["G_ema"], Call) and tree["G"] is tree["G_ema"]


SAMPLES = [
    {"a": [1, 2.5, -3, 2**70, -(2**70), 255, 256, 65535, 65536, -1, True, False, None]},
    ("x" * 300, b"y" * 300, b"z" * 70000, "é" * 10, frozenset({1, 2}), {3, 4}, ()),
    [list(range(2500)), {i: str(i) for i in range(1500)}],
    (1, 2, 3, 4, (5,), ((6, 7), 8)),
]


@pytest.mark.parametrize("obj", SAMPLES)
@pytest.mark.parametrize("protocol", [2, 4])
def test_plain_data_round_trips(obj, protocol):
    data = pickle.dumps(obj, protocol=protocol)
    out = dumps_pickle_tree(_tree(data))
    assert pickle.loads(out) == obj
    if protocol == 4:
        assert out == data  # same layout as CPython's pickler, framing included


def test_shared_objects_stay_shared():
    shared = [1, 2]
    obj = {"a": shared, "b": shared, "c": (shared, shared)}
    back = pickle.loads(dumps_pickle_tree(_tree(pickle.dumps(obj, protocol=4))))
    assert back["a"] is back["b"] is back["c"][0] is back["c"][1]


def test_reduce_newobj_build_setitems_are_recorded():
    data = pickle.dumps(collections.OrderedDict(a=1, b=2), protocol=4)
    tree = _tree(data)
    assert isinstance(tree, Call) and tree.qualname == "collections.OrderedDict" and tree.args == ()
    assert tree.dictitems == [("a", 1), ("b", 2)]
    assert pickle.loads(dumps_pickle_tree(tree)) == collections.OrderedDict(a=1, b=2)


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo should-never-run",))


def test_disallowed_global_is_refused():
    data = pickle.dumps({"x": Evil()}, protocol=4)
    with pytest.raises(UnsafeCheckpointError, match="system"):
        _tree(data, allowed=lambda q: q == "collections.OrderedDict")


def test_nothing_is_called_even_when_allowed():
    tree = _tree(pickle.dumps(Evil(), protocol=4))  # allowed, but only recorded
    assert isinstance(tree, Call) and isinstance(tree.func, Global) and tree.args == ("echo should-never-run",)


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_truncated_pickle(cut):
    data = pickle.dumps({"a": list(range(100))}, protocol=4)
    with pytest.raises(CheckpointFormatError, match="truncated"):
        _tree(data[:-cut])


def test_unsupported_opcode():
    with pytest.raises(CheckpointFormatError, match="PERSID|BINPERSID"):
        _tree(b"\x80\x04Q.")


def _chain(depth: int) -> bytes:
    """[[[...]]] `depth` deep, built through the memo so the pickle's stack never grows."""
    import struct

    ops = [b"\x80\x04]\x94"]  # L0 = [], memo 0
    for i in range(depth):
        ops.append(b"]j" + struct.pack("<I", i) + b"a\x940")  # L(i+1) = [L(i)], memo i+1, pop
    return b"".join(ops) + b"0j" + struct.pack("<I", depth) + b"."


@pytest.mark.parametrize("data, match", [
    (b"\x80\x04]\x94h\x00a.", "contains itself"),  # a list holding itself
    (_chain(5000), "deeper than"),
], ids=["self-referencing", "5000-deep"])
def test_self_referencing_and_deep_trees_refused(data, match):
    """Such trees read in constant stack, but writing them back (or comparing their kwargs)
    would recurse without bound; they are refused when read."""
    with pytest.raises(CheckpointFormatError, match=match):
        _tree(data)


def test_moderately_deep_tree_still_reads():
    assert isinstance(_tree(_chain(50)), list)
