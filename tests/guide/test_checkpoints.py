"""The checkpoint registry: manifest, statuses, require_checkpoint, `guide checkpoints`."""
import dataclasses
import hashlib
import json
import re
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from guide import checkpoints as ck
from guide.cli import cli
from guide.io import CorruptCheckpointError, MissingCheckpointError
from guide.paths import CHECKPOINT_FILES, CHECKPOINTS_ENV

REPO = Path(__file__).resolve().parents[2]
IR_SE50 = "model_ir_se50.pth"
VGG = "vgg16-397923af.pth"
EG3D = "ffhqrebalanced512-128.pkl"


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(CHECKPOINTS_ENV, raising=False)


def _torch_file(path: Path, zipfile: bool = True) -> Path:
    torch.save({"w": torch.arange(64.0)}, path, _use_new_zipfile_serialization=zipfile)
    return path


# ------------------------------------------------------------------------------ manifest


def test_manifest_lists_every_file_with_its_facts():
    reg = ck.registry()
    assert set(reg) == set(CHECKPOINT_FILES) and len(reg) == 7
    for name, entry in reg.items():
        assert entry.what == CHECKPOINT_FILES[name]
        assert entry.purpose and entry.used_by and entry.source_project and entry.source_url
        assert entry.kind in ("eg3d_pkl", "torch")
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.size_bytes is None or entry.size_bytes > 0
    assert reg[EG3D].kind == "eg3d_pkl" and "NVIDIA Source Code License" in reg[EG3D].licence
    assert reg[VGG].sha256_prefix == "397923af"
    projects = {e.source_project for e in reg.values()}
    for project in ("NVlabs/eg3d", "GOAE", "TreB1eN/InsightFace_Pytorch", "HuangYG123/CurricularFace",
                    "torchvision", "pytorch-fid"):
        assert any(project in p for p in projects), project


def test_manifest_is_package_data_and_readme_agrees():
    setup = (REPO / "setup.py").read_text()
    assert "checkpoints_manifest.json" in setup
    readme = (REPO / "checkpoints" / "README.md").read_text()
    for name in ck.registry():
        assert f"`{name}`" in readme, name
    data = json.loads((REPO / "guide" / "checkpoints_manifest.json").read_text())
    assert [row["name"] for row in data["files"]] == list(ck.registry())


# ------------------------------------------------------------------------------ statuses


def test_statuses_present_missing_mismatch_unreadable(tmp_path):
    _torch_file(tmp_path / IR_SE50)
    _torch_file(tmp_path / VGG)  # right kind of file, wrong content: its sha256 prefix cannot match
    (tmp_path / "CurricularFace_Backbone.pth").write_bytes(b"")
    cut = _torch_file(tmp_path / "encoder_FFHQ.pt")
    cut.write_bytes(cut.read_bytes()[:-200])  # zip without its end record
    quick = {s.name: s for s in ck.checkpoint_statuses(tmp_path)}
    assert quick[IR_SE50].state == ck.PRESENT and quick[IR_SE50].bytes == (tmp_path / IR_SE50).stat().st_size
    assert quick[VGG].state == ck.PRESENT  # hashes are only computed with verify
    assert quick["CurricularFace_Backbone.pth"].state == ck.UNREADABLE and "empty" in quick["CurricularFace_Backbone.pth"].detail
    assert quick["encoder_FFHQ.pt"].state == ck.UNREADABLE and "truncated" in quick["encoder_FFHQ.pt"].detail
    assert quick[EG3D].state == ck.MISSING and "NVlabs/eg3d" in quick[EG3D].detail
    full = {s.name: s for s in ck.checkpoint_statuses(tmp_path, verify=True)}
    assert full[IR_SE50].state == ck.PRESENT and full[IR_SE50].sha256 == hashlib.sha256(
        (tmp_path / IR_SE50).read_bytes()).hexdigest()
    assert full[VGG].state == ck.MISMATCH and "397923af" in full[VGG].detail


def test_verify_opens_files(tmp_path, eg3d_fixtures):
    legacy = _torch_file(tmp_path / IR_SE50, zipfile=False)
    legacy.write_bytes(legacy.read_bytes()[:-40])  # legacy stream: only a full load notices
    assert ck.checkpoint_status(IR_SE50, tmp_path).state == ck.PRESENT
    status = ck.checkpoint_status(IR_SE50, tmp_path, verify=True)
    assert status.state == ck.UNREADABLE and "truncated or corrupt" in status.detail
    (tmp_path / EG3D).symlink_to(eg3d_fixtures / "tiny_G.pkl")  # read in place, via a link in tmp
    assert ck.checkpoint_status(EG3D, tmp_path, verify=True).state == ck.PRESENT


def test_truncated_pickle_is_unreadable(tmp_path, eg3d_fixtures):
    (tmp_path / EG3D).write_bytes((eg3d_fixtures / "tiny_G.pkl").read_bytes()[:300_000])
    status = ck.checkpoint_status(EG3D, tmp_path)
    assert status.state == ck.UNREADABLE and "truncated" in status.detail


def test_known_hash_and_size(tmp_path):
    path = _torch_file(tmp_path / IR_SE50)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry = dataclasses.replace(ck.registry()[IR_SE50], sha256=digest, size_bytes=path.stat().st_size)
    assert ck.checkpoint_status(entry, tmp_path, verify=True).state == ck.PRESENT
    wrong = dataclasses.replace(entry, sha256="0" * 64)
    assert ck.checkpoint_status(wrong, tmp_path, verify=True).state == ck.MISMATCH
    wrong_size = dataclasses.replace(entry, size_bytes=entry.size_bytes + 1)
    assert ck.checkpoint_status(wrong_size, tmp_path).state == ck.MISMATCH


# ------------------------------------------------------------------------ require / open


def test_require_checkpoint(tmp_path):
    with pytest.raises(MissingCheckpointError) as info:
        ck.require_checkpoint(IR_SE50, tmp_path)
    message = info.value.one_line()
    for part in (IR_SE50, "identity loss", "TreB1eN/InsightFace_Pytorch", "guide erase", str(tmp_path)):
        assert part in message, part
    (tmp_path / IR_SE50).write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match="empty"):
        ck.require_checkpoint(IR_SE50, tmp_path)
    _torch_file(tmp_path / IR_SE50)
    assert ck.require_checkpoint(IR_SE50, tmp_path) == tmp_path / IR_SE50
    with pytest.raises(ValueError, match="not in the checkpoint registry"):
        ck.require_checkpoint("nope.pth", tmp_path)


def test_open_checkpoint(tmp_path, eg3d_fixtures):
    _torch_file(tmp_path / IR_SE50)
    assert torch.equal(ck.open_checkpoint(IR_SE50, tmp_path)["w"], torch.arange(64.0))
    (tmp_path / EG3D).symlink_to(eg3d_fixtures / "tiny_G.pkl")
    assert isinstance(ck.open_checkpoint(EG3D, tmp_path)["G_ema"], torch.nn.Module)
    legacy = _torch_file(tmp_path / "encoder_FFHQ.pt", zipfile=False)
    legacy.write_bytes(legacy.read_bytes()[:-40])
    with pytest.raises(CorruptCheckpointError, match="download encoder_FFHQ.pt again from GOAE"):
        ck.open_checkpoint("encoder_FFHQ.pt", tmp_path)


# ----------------------------------------------------------------------------------- CLI


@pytest.fixture
def runner():
    return CliRunner()


def test_cli_lists_statuses(runner, tmp_path):
    _torch_file(tmp_path / IR_SE50)
    result = runner.invoke(cli, ["checkpoints", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"[present   ] {IR_SE50}" in result.output
    assert f"[missing   ] {EG3D}" in result.output and "NVlabs/eg3d release on NGC" in result.output
    assert "1/7 checkpoint files present" in result.output


def test_cli_json_and_env(runner, tmp_path, monkeypatch):
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    _torch_file(tmp_path / VGG)
    result = runner.invoke(cli, ["checkpoints", "--json", "--verify"])
    info = json.loads(result.stdout)
    assert info["dir"] == str(tmp_path) and info["verified"] is True
    states = {f["name"]: f["state"] for f in info["files"]}
    assert states[VGG] == "mismatch" and states[IR_SE50] == "missing"
    assert result.exit_code == 2 and result.stderr.startswith("error: 1 checkpoint file(s)")
    assert "Traceback" not in result.output


def test_cli_damaged_file_is_one_line_error(runner, tmp_path):
    (tmp_path / EG3D).write_bytes(b"\x80\x04garbage")
    result = runner.invoke(cli, ["checkpoints", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 2
    assert f"[unreadable] {EG3D}" in result.stdout
    assert result.stderr.count("\n") == 1 and "unreadable" in result.stderr
    assert "Traceback" not in result.output


def _command_needing(monkeypatch, name, opener):
    @click.command("needs")
    @click.option("--checkpoints", type=click.Path(path_type=Path))
    def needs(checkpoints):
        opener(name, checkpoints)
        click.echo("ok")

    monkeypatch.setitem(cli.commands, "needs", needs)


def test_require_checkpoint_errors_via_cli(runner, tmp_path, monkeypatch):
    _command_needing(monkeypatch, "encoder_FFHQ.pt", ck.require_checkpoint)
    result = runner.invoke(cli, ["needs", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: checkpoint encoder_FFHQ.pt is missing") and result.stderr.count("\n") == 1
    assert "GOAE GitHub release" in result.stderr and "Traceback" not in result.output
    (tmp_path / "encoder_FFHQ.pt").write_bytes(b"not a checkpoint at all")
    result = runner.invoke(cli, ["needs", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 2 and "not a PyTorch checkpoint" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_open_checkpoint_errors_via_cli(runner, tmp_path, monkeypatch):
    _command_needing(monkeypatch, IR_SE50, ck.open_checkpoint)
    legacy = _torch_file(tmp_path / IR_SE50, zipfile=False)
    legacy.write_bytes(legacy.read_bytes()[:-40])
    result = runner.invoke(cli, ["needs", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "truncated or corrupt" in result.stderr and "Traceback" not in result.output
