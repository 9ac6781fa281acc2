"""`--device auto` (the default everywhere): CUDA when available, else the CPU."""
import click
import torch

from guide.devices import resolve_device

EXPECTED = "cuda" if torch.cuda.is_available() else "cpu"


def test_auto_is_cuda_when_available_else_cpu():
    assert resolve_device("auto").type == EXPECTED
    assert resolve_device("AUTO").type == EXPECTED
    assert resolve_device("cpu").type == "cpu"


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


def test_every_command_with_a_device_option_defaults_to_auto():
    from guide.cli import cli

    seen = []
    for path, command in _commands(cli):
        for param in command.params:
            if param.name == "device":
                seen.append(" ".join(path))
                assert param.default == "auto", " ".join(path)
    # erase, invert, preprocess, render, bench, batch-bench, eval id|fid|all, reproduce ood
    assert {"erase", "invert", "eval all", "reproduce ood"} <= set(seen) and len(seen) >= 10, seen


def test_job_files_default_to_auto():
    from guide.batch.schema import parse_job

    assert parse_job({"identities": [{"random": 1}]}).devices == [EXPECTED]
    assert parse_job({"identities": [{"random": 1}], "device": "auto"}).devices == [EXPECTED]
