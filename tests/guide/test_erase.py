"""The erase pipeline and its commands on the tiny model (random networks)."""
import json

import pytest
import torch
from click.testing import CliRunner

from guide.cli import cli
from guide.config import method_preset
from guide.erase import Identity, Networks, run_erase
from guide.io import load_generator, save_generator


def _config(iters=3):
    config = method_preset("guide")
    config.ltu.iters = iters
    config.ltu.lr = 1e-3
    return config


@pytest.fixture
def networks(random_lpips, tiny_id_loss):
    return Networks(random_lpips, tiny_id_loss, note="test stand-ins")


def _run(factory, networks, out, **kw):
    return run_erase(Identity("random", 5), out, factory(), kw.pop("config", _config()), networks,
                     progress=False, log=lambda m: None, **kw)


@pytest.mark.slow
def test_outputs_and_resume_after_kill_are_bit_identical(tiny_generator_factory, networks, tmp_path):
    full = _run(tiny_generator_factory, networks, tmp_path / "full", checkpoint_every=1)
    for name in ("generator.safetensors", "generator.json", "grid.png", "losses.png", "losses.jsonl",
                 "latents.pt", "config.json", "metrics.json", "renders/before_00.png", "renders/after_10.png",
                 "renders/target_05.png", "checkpoint/state.pt"):
        assert (full.out_dir / name).is_file(), name
    metrics = json.loads((full.out_dir / "metrics.json").read_text())
    assert metrics["steps"] == 3
    assert len((full.out_dir / "losses.jsonl").read_text().splitlines()) == 3

    class Killed(BaseException):
        pass

    def kill(step, values):
        if step == 2:
            raise Killed()

    with pytest.raises(Killed):
        _run(tiny_generator_factory, networks, tmp_path / "resumed", checkpoint_every=1, on_step=kill)
    assert not (tmp_path / "resumed" / "generator.json").exists()  # nothing final written
    resumed = _run(tiny_generator_factory, networks, tmp_path / "resumed", checkpoint_every=1, resume=True)
    a = load_generator(full.out_dir).state_dict()
    b = load_generator(resumed.out_dir).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (full.out_dir / "losses.jsonl").read_text() == (resumed.out_dir / "losses.jsonl").read_text()


def test_refuses_existing_output_and_changed_settings(tiny_generator_factory, networks, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("x")
    from guide.io.folders import OutputFolderError

    with pytest.raises(OutputFolderError, match="--overwrite"):
        _run(tiny_generator_factory, networks, out, config=_config(1))


@pytest.mark.slow
def test_cli_erase_render_and_one_line_errors(tiny_generator_factory, tmp_path):
    G = tiny_generator_factory()
    save_generator(G, tmp_path / "tiny")
    runner = CliRunner()
    out = tmp_path / "erased"
    args = ["erase", "--random-seed", "1", "--generator", str(tmp_path / "tiny.json"), "--out", str(out),
            "--iters", "2", "--random-networks", "--checkpoints", str(tmp_path / "none")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "done: 2 steps" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["erase"]["ltu"]["iters"] == 2 and config["erase"]["target"]["distance"] == 30.0

    again = runner.invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output and "Traceback" not in again.output

    result = runner.invoke(cli, ["render", "--generator", str(out / "generator.json"), "--latent",
                                 str(out / "latents.pt"), "--views", "2", "--out", str(tmp_path / "views")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "views" / "grid.png").is_file()

    missing = runner.invoke(cli, ["erase", "--random-seed", "1", "--out", str(tmp_path / "x"), "--checkpoints",
                                  str(tmp_path / "none")])
    assert missing.exit_code != 0 and "ffhqrebalanced512-128.pkl" in missing.output
    assert "Traceback" not in missing.output
    both = runner.invoke(cli, ["erase", "face.jpg", "--random-seed", "1", "--out", str(tmp_path / "y")])
    assert both.exit_code == 2 and "exactly one" in both.output
    cuda = runner.invoke(cli, ["erase", "--random-seed", "1", "--out", str(tmp_path / "z"), "--device", "cuda:7"])
    if not torch.cuda.is_available():
        assert cuda.exit_code == 2 and "CUDA is not available" in cuda.output


@pytest.mark.slow
def test_demo_completes(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo"), "--iters", "2"])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output
    assert (tmp_path / "demo" / "grid.png").is_file() and (tmp_path / "demo" / "generator.json").is_file()


@pytest.mark.slow
def test_erase_from_a_photo(tiny_generator_factory, networks, tmp_path, monkeypatch, shared_dir):
    """Photo -> detect/align -> GOAE (tiny, random) + w_avg file -> UFO -> LTU."""
    import dataclasses

    import goae

    from guide import inversion
    from tests.goae.conftest import randomize, tiny_config

    config = dataclasses.replace(tiny_config(), w_dim=512)
    encoder = randomize(goae.GOAEncoder(config), seed=1).eval()
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save(encoder.state_dict(), folder / inversion.ENCODER_FILE)
    w_avg = torch.randn(14, 512, generator=torch.Generator().manual_seed(0))
    torch.save(w_avg, folder / inversion.W_AVG_FILE)
    monkeypatch.setattr(inversion, "load_encoder",
                        lambda path, device="cpu": goae.GOAEncoder.from_checkpoint(path, device, config=config))
    from guide.identity import ir101

    torch.manual_seed(0)
    torch.save(ir101().state_dict(), folder / "CurricularFace_Backbone.pth")  # random weights: plumbing only
    photo = shared_dir / "faces" / "wild_1.jpg"
    result = run_erase(Identity("photo", str(photo)), tmp_path / "out", tiny_generator_factory(), _config(1),
                       networks, checkpoint_dir=folder, progress=False, log=lambda m: None)
    latents = torch.load(result.out_dir / "latents.pt", weights_only=True)
    aligned = inversion.invert_photo(photo, w_avg=w_avg[None], encoder=encoder)
    assert torch.allclose(latents["w_u"], aligned, atol=1e-5)
    settings = json.loads((result.out_dir / "config.json").read_text())
    assert settings["w_avg"].endswith(inversion.W_AVG_FILE)
    assert settings["identity"] == {"kind": "photo", "value": str(photo)}
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert 0 <= metrics["ID"] <= 1.0001 and "pixel_l1_after_target" in metrics  # eval_id merged its keys
