"""load_state_file: weights_only torch files and safetensors; every failure is one line."""
import os

import pytest
import torch
from safetensors.torch import save_file

from guide.io import CorruptCheckpointError, MissingCheckpointError, load_state_file

STATE = {"layer.weight": torch.arange(12.0).reshape(3, 4), "layer.bias": torch.ones(3, dtype=torch.float64)}


def _same(a, b, ordered=True):
    keys_match = list(a) == list(b) if ordered else sorted(a) == sorted(b)
    return keys_match and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("zipfile", [True, False])
def test_torch_files(tmp_path, zipfile):
    path = tmp_path / "model.pth"
    torch.save(STATE, path, _use_new_zipfile_serialization=zipfile)
    assert _same(load_state_file(path), STATE)
    w_avg = tmp_path / "w_avg.pt"
    torch.save(torch.full((512,), 0.5), w_avg, _use_new_zipfile_serialization=zipfile)
    assert torch.equal(load_state_file(w_avg), torch.full((512,), 0.5))


def test_safetensors(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(STATE, str(path))
    assert _same(load_state_file(path), STATE, ordered=False)  # safetensors sorts its keys
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptCheckpointError, match="truncated or corrupt safetensors"):
        load_state_file(path)


def _one_line_error(path, match):
    with pytest.raises(CorruptCheckpointError, match=match) as info:
        load_state_file(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("zipfile", [True, False])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_torch_files(tmp_path, zipfile, keep):
    path = tmp_path / "model.pth"
    torch.save({"w": torch.randn(4096)}, path, _use_new_zipfile_serialization=zipfile)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    _one_line_error(path, "truncated or corrupt")


def test_empty_garbage_and_missing(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _one_line_error(empty, "empty")
    noise = bytes((i * 37 + 11) % 256 for i in range(4096))
    for name, data in (("garbage.pt", noise), ("garbage_pickle.pt", b"\x80\x02" + noise)):
        (tmp_path / name).write_bytes(data)
        _one_line_error(tmp_path / name, "truncated or corrupt")
    with pytest.raises(MissingCheckpointError):
        load_state_file(tmp_path / "absent.pth")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_python_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(1), "x": Evil()}, path)
    message = _one_line_error(path, "refused")
    assert "system" in message


# --------------------------------------------------------------- memory bounds and odd failures


@pytest.mark.parametrize("claimed, match", [(1 << 24, "more elements than their storages hold"),
                                            (1 << 30, "implausibly large")])
def test_stride_zero_views_refused_before_materialising(tmp_path, claimed, match):
    """torch.save of a stride-0 view stores one element; loaded, it claims `claimed` (a 4-byte
    file would become 64 MiB or 4 GiB under .clone(), .float() or a repeat)."""
    path = tmp_path / "w.pt"
    torch.save(torch.ones(1).expand(claimed), path)
    _one_line_error(path, match)


def test_small_expanded_views_still_load(tmp_path):
    path = tmp_path / "w_avg.pt"
    torch.save(torch.arange(512.0).expand(14, 512), path)  # one row broadcast to 14, as a w_avg may be
    assert torch.equal(load_state_file(path), torch.arange(512.0).expand(14, 512))


def test_self_referencing_container_refused(tmp_path):
    loop: list = [torch.ones(1)]
    loop.append(loop)
    path = tmp_path / "loop.pt"
    torch.save(loop, path)
    _one_line_error(path, "nested deeper")


def test_any_decoding_failure_is_one_line(tmp_path):
    """Legacy torch streams whose records are of the wrong kind raise TypeError or AssertionError
    inside torch.load; they are reported like any other damaged file."""
    import pickle

    head = b"".join(pickle.dumps(v, protocol=2) for v in (
        0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                       "type_sizes": {"short": 2, "int": 4, "long": 4}}, {}))
    for name, tail in (("type_error.pt", pickle.dumps(5, protocol=2)), ("assert.pt", pickle.dumps(["a"], protocol=2))):
        (tmp_path / name).write_bytes(head + tail)
        _one_line_error(tmp_path / name, "truncated or corrupt")
