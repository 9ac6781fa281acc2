"""The `guide` command line: help, version, doctor, checkpoint directory, one-line errors."""
import json
import sys

import click
import pytest
from click.testing import CliRunner

import guide
from guide.cli import cli, main
from guide.errors import GuideError
from guide.paths import CHECKPOINT_FILES, CHECKPOINTS_ENV, resolve_checkpoint_dir

EXPECTED_FILES = {
    "ffhqrebalanced512-128.pkl",
    "encoder_FFHQ.pt",
    "model_ir_se50.pth",
    "CurricularFace_Backbone.pth",
    "w_avg_ffhqrebalanced512-128.pt",
    "vgg16-397923af.pth",
    "pt_inception-2015-12-05-6726825d.pth",
}


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(CHECKPOINTS_ENV, raising=False)


def test_help(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "unlearning" in result.output and "EG3D" in result.output
    assert "doctor" in result.output


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert guide.__version__ in result.output


def test_unknown_command_keeps_click_usage_error(runner):
    result = runner.invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "Usage:" in result.output


def test_doctor_text(runner, tmp_path):
    (tmp_path / "encoder_FFHQ.pt").write_bytes(b"x" * 2048)
    result = runner.invoke(cli, ["doctor", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    for word in ("Python", "torch", "torchvision", "CUDA", "cuDNN", "nvcc", "ninja", "CUDA kernels"):
        assert word in out
    assert str(tmp_path) in out
    assert "[ok     ] encoder_FFHQ.pt" in out and "2.0 KiB" in out
    assert "[missing] ffhqrebalanced512-128.pkl" in out
    assert "1/7 checkpoint files present" in out


def test_doctor_json(runner, tmp_path):
    (tmp_path / "model_ir_se50.pth").write_bytes(b"123")
    result = runner.invoke(cli, ["doctor", "--json", "--checkpoints", str(tmp_path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["guide"] == guide.__version__
    assert info["python"]["version"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert isinstance(info["cuda_available"], bool) and isinstance(info["gpus"], list)
    assert set(info["tools"]) == {"nvcc", "ninja"}
    assert "state" in info["cuda_kernels"]
    ck = info["checkpoints"]
    assert ck["dir"] == str(tmp_path) and ck["exists"] is True
    assert set(ck["files"]) == EXPECTED_FILES == set(CHECKPOINT_FILES)
    assert ck["files"]["model_ir_se50.pth"] == {"present": True, "bytes": 3, "what": CHECKPOINT_FILES["model_ir_se50.pth"]}
    assert ck["files"]["encoder_FFHQ.pt"]["present"] is False


def test_doctor_missing_dir(runner, tmp_path):
    result = runner.invoke(cli, ["doctor", "--json", "--checkpoints", str(tmp_path / "nope")])
    assert result.exit_code == 0
    assert json.loads(result.output)["checkpoints"]["exists"] is False


def test_doctor_uses_kernel_build_status(runner, monkeypatch):
    import eg3d.ops.cuda_kernels as kernels

    monkeypatch.setattr(kernels, "build_status", lambda: {"state": "built", "error": None, "seconds": 12.5}, raising=False)
    info = json.loads(runner.invoke(cli, ["doctor", "--json"]).output)
    assert info["cuda_kernels"] == {"state": "built", "error": None, "seconds": 12.5}
    assert "CUDA kernels  built (seconds=12.5)" in runner.invoke(cli, ["doctor"]).output

    def broken():
        raise RuntimeError("nvcc exploded")

    monkeypatch.setattr(kernels, "build_status", broken)
    info = json.loads(runner.invoke(cli, ["doctor", "--json"]).output)
    assert info["cuda_kernels"]["state"] == "error" and "nvcc exploded" in info["cuda_kernels"]["error"]


def test_doctor_without_build_status(runner, monkeypatch):
    import eg3d.ops.cuda_kernels as kernels

    monkeypatch.delattr(kernels, "build_status", raising=False)
    info = json.loads(runner.invoke(cli, ["doctor", "--json"]).output)
    assert info["cuda_kernels"]["state"] == "unknown"


def test_checkpoint_dir_resolution_order(monkeypatch, tmp_path):
    cli_dir, env_dir, cwd = tmp_path / "cli", tmp_path / "env", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert resolve_checkpoint_dir() == cwd / "checkpoints"
    monkeypatch.setenv(CHECKPOINTS_ENV, "")
    assert resolve_checkpoint_dir() == cwd / "checkpoints"
    monkeypatch.setenv(CHECKPOINTS_ENV, str(env_dir))
    assert resolve_checkpoint_dir() == env_dir
    assert resolve_checkpoint_dir(None) == env_dir
    assert resolve_checkpoint_dir(cli_dir) == cli_dir
    assert resolve_checkpoint_dir(str(cli_dir)) == cli_dir
    assert resolve_checkpoint_dir("rel") == cwd / "rel"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_checkpoint_dir("~/ck") == tmp_path / "ck"


def test_doctor_follows_env(runner, monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    info = json.loads(runner.invoke(cli, ["doctor", "--json"]).output)
    assert info["checkpoints"]["dir"] == str(tmp_path)
    other = tmp_path / "other"
    info = json.loads(runner.invoke(cli, ["doctor", "--json", "--checkpoints", str(other)]).output)
    assert info["checkpoints"]["dir"] == str(other)


def _add_command(monkeypatch, exc: Exception) -> None:
    @click.command("boom")
    def boom() -> None:
        raise exc

    monkeypatch.setitem(cli.commands, "boom", boom)


def test_guide_error_is_one_line(runner, monkeypatch):
    _add_command(monkeypatch, GuideError("checkpoint foo.pkl is missing\n  (looked in /x)"))
    result = runner.invoke(cli, ["boom"])
    assert result.exit_code == 2
    assert result.stderr == "error: checkpoint foo.pkl is missing (looked in /x)\n"
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_guide_error_subclass_exit_code(runner, monkeypatch):
    class Special(GuideError):
        exit_code = 3

    _add_command(monkeypatch, Special(""))
    result = runner.invoke(cli, ["boom"])
    assert result.exit_code == 3
    assert result.stderr == "error: Special\n"


def test_main_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["guide", "--version"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0
    assert guide.__version__ in capsys.readouterr().out
