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
