"""The erase pipeline and its commands on the tiny model (random networks)."""
import json

import pytest
import torch
from click.testing import CliRunner

from guide.cli import cli
from guide.config import method_preset
from guide.erase import Identity, Networks, run_erase
from guide.errors import GuideError
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
    """`guide demo` in the toy world (2 steps here): outputs, toy ID metrics, report, labelled grid."""
    import json

    from PIL import Image

    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--iters", "2"])
    assert result.exit_code == 0, result.output
    assert "toy world" in result.output and "toy ID" in result.output
    assert (out / "generator.json").is_file() and (out / "report.html").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(isinstance(metrics[k], float) for k in ("ID", "ID_others", "FID_pre"))
    assert "toy CurricularFace" in metrics["identity"]["network"]
    with Image.open(out / "grid.png") as grid:  # 3 rows for the erased head + 2 x 2 for the others
        assert grid.size[1] == 7 * 128


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
                        lambda path, device="cpu", stochastic=False:
                        goae.GOAEncoder.from_checkpoint(path, device, config=config))
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


def test_loop_reads_in_batches_logs_every_step_and_checkpoints_its_own_step(tiny_generator_factory, tiny_lpips,
                                                                             tmp_path, monkeypatch):
    """train_ltu with reads every 5 steps and checkpoints every 2: every step reaches the log in
    order, and whenever a checkpoint is written the trainer is at that checkpoint's step. The
    step itself is replaced by a stub that only counts (the loop is what is tested)."""
    from guide.erase import train_ltu
    from guide.trainer import LossRecord
    from tests.guide.trainer_utils import make_trainer

    trainer = make_trainer(tiny_generator_factory, tiny_lpips, None, iters=7)
    trainer.layout = [["loss"]]

    def stub_step():
        record = LossRecord(trainer.step_index, torch.tensor([float(trainer.step_index)]))
        trainer.step_index += 1
        return record

    monkeypatch.setattr(trainer, "step_on_device", stub_step)
    saved = []
    monkeypatch.setattr("guide.erase.save_training_state",
                        lambda t, out, history: saved.append((t.step_index, len(history))))
    delivered = []
    history = train_ltu(trainer, tmp_path, checkpoint_every=2, read_every=5, progress=False, log=lambda m: None,
                        on_step=lambda step, values: delivered.append((step, trainer.step_index)))
    assert [h["step"] for h in history] == list(range(1, 8)) and [h["loss"] for h in history] == list(range(7))
    assert saved == [(2, 2), (4, 4), (6, 6), (7, 7)]  # periodic checkpoints, then the final one
    assert delivered == [(1, 2), (2, 2), (3, 4), (4, 4), (5, 6), (6, 6), (7, 7)]


def test_cuda_graph_without_cuda_is_one_line_error(tmp_path):
    if torch.cuda.is_available():
        return
    result = CliRunner().invoke(cli, ["erase", "--random-seed", "1", "--out", str(tmp_path / "out"), "--cuda-graph"])
    assert result.exit_code == 2 and "--cuda-graph needs --device cuda" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


# -------------------------------------------------------- the reference's protocol: inputs and settings


def test_folder_photos_sorted_by_name_images_only(tmp_path):
    from guide.erase import folder_photos
    from guide.errors import GuideError

    for name in ("b.jpg", "a.png", "c.JPEG", "notes.txt", ".DS_Store"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in folder_photos(tmp_path)] == ["a.png", "b.jpg", "c.JPEG"]
    with pytest.raises(GuideError, match="holds no photos"):
        folder_photos(tmp_path / "sub")


def test_missing_w_avg_is_an_error_for_photos_and_latents_unless_mapping(tiny_generator_factory, networks,
                                                                         tmp_path):
    """A latent or photo erasure without w_avg_ffhqrebalanced512-128.pt stops before writing
    anything (in a batch: that identity fails); --w-avg mapping, or a random identity, uses the
    generator's own mean."""
    from guide.erase import identity_latent, load_w_avg
    from guide.errors import GuideError

    G = tiny_generator_factory()
    torch.save({"w": torch.full((1, 14, 512), 0.5)}, tmp_path / "w.pt")
    latent = Identity("latent", str(tmp_path / "w.pt"))
    with pytest.raises(GuideError, match="w_avg_ffhqrebalanced512-128.pt.*--w-avg mapping"):
        run_erase(latent, tmp_path / "out", G, _config(1), networks, checkpoint_dir=tmp_path, progress=False,
                  log=lambda m: None)
    assert not (tmp_path / "out").exists()
    w_avg, source = load_w_avg(G, tmp_path, "cpu", "mapping")
    assert "--w-avg mapping" in source and torch.equal(w_avg[0, 0], G.backbone.mapping.w_avg)
    assert "no w_avg file" in load_w_avg(G, tmp_path, "cpu", "file")[1]
    config = _config(1)
    with pytest.raises(GuideError, match="missing .*w_avg_ffhqrebalanced512-128.pt"):
        identity_latent(Identity("photo", "face.jpg"), G, config, w_avg, tmp_path, "cpu")  # inverting needs it
    assert identity_latent(Identity("random", 3), G, config, w_avg, tmp_path, "cpu").shape == (1, 14, 512)
    assert float(identity_latent(latent, G, config, w_avg, tmp_path, "cpu").mean()) == 0.5  # rendering does not


def test_cpu_warning_only_for_full_size_on_cpu(tiny_generator_factory):
    from types import SimpleNamespace

    from guide.erase import cpu_warning

    full = SimpleNamespace(img_resolution=512)
    line = cpu_warning(full, 1000, "cpu")
    assert line.startswith("warning: ") and "\n" not in line and "--device cuda" in line
    assert "25.6 h" in line and "3.7 min" in line  # 1000 x 92 s on the CPU, 1000 x 0.22 s on a GPU
    assert cpu_warning(full, 1000, "cuda") is None
    assert cpu_warning(tiny_generator_factory(), 1000, "cpu") is None


def test_erase_set_reaches_the_reference_options():
    from guide.commands.erase import erase_config

    config, views = erase_config("guide", 3, {"aligned": True, "inversion": "stochastic", "w_avg": "mapping"}, [
        "truncation_psi=0.7", "truncation_cutoff=8", "camera.fov_degrees=20", "camera.pitch_offset=-0.1",
        "camera.yaw_range=0.3", "evaluation.views=5", "evaluation.renders=random", "losses.adj_alpha_min=2",
        "losses.adj_weight=0.5"])
    ltu = config.ltu
    assert (ltu.truncation_psi, ltu.truncation_cutoff) == (0.7, 8)
    assert (ltu.camera.fov_degrees, ltu.camera.pitch_offset, ltu.camera.yaw_range) == (20.0, -0.1, 0.3)
    assert (ltu.losses.adj_alpha_min, ltu.losses.adj_weight, views, config.renders) == (2.0, 0.5, 5, "random")
    assert (config.inversion.aligned, config.inversion.mode, config.inversion.w_avg, config.seed) == \
        (True, "stochastic", "mapping", 3)
    assert config.inversion_seed == 3
    default, views = erase_config("baseline", 0, {})
    assert default.inversion_seed is None and views is None and default.renders == "paired"
    assert not default.ltu.losses.adjacency  # the method preset still applies


@pytest.mark.parametrize("item, needle", [
    ("camra.fov_degrees=20", "did you mean 'camera'"),
    ("camera.fov=20", "camera.fov: unknown option"),
    ("truncation_cutoff=-1", "truncation_cutoff: must be at least 0"),
    ("evaluation.views=0", "evaluation.views"),
    ("evaluation.fid=true", "only evaluation.views and evaluation.renders"),
    ("iters", "expected KEY=VALUE"),
])
def test_erase_set_mistakes_are_one_line_errors(tmp_path, item, needle):
    result = CliRunner().invoke(cli, ["erase", "--random-seed", "1", "--out", str(tmp_path / "o"), "--set", item,
                                      "--checkpoints", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and needle in errors[0], result.output
    assert not (tmp_path / "o").exists()


def test_erase_cli_folder_options_and_the_aligned_note(tmp_path):
    from PIL import Image

    photo = tmp_path / "crop.png"
    Image.new("RGB", (512, 512), (120, 100, 90)).save(photo)
    runner = CliRunner()
    bad = runner.invoke(cli, ["erase", str(photo), "--target-index", "1", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "--target-index picks a photo of a folder" in bad.output
    # the note comes before any loading; the missing generator then stops the run in one line
    result = runner.invoke(cli, ["erase", str(photo), "--out", str(tmp_path / "o"), "--checkpoints",
                                 str(tmp_path / "none")])
    assert "may already be an aligned crop; pass --aligned" in result.output
    assert result.exit_code != 0 and "ffhqrebalanced512-128.pkl" in result.output
    quiet = runner.invoke(cli, ["erase", str(photo), "--aligned", "--out", str(tmp_path / "o"), "--checkpoints",
                                str(tmp_path / "none")])
    assert "may already be" not in quiet.output


# ------------------------------------------------- the output folder: nothing of the user's is lost


def _earlier_results(out):
    """An earlier erase's files, an interrupted atomic write, and a user's own files."""
    files = {"config.json": "{}", "generator.json": "old", "renders/before_00.png": "old",
             "renders/before_10.png": "old", "checkpoint/state.pt": "old", "audit.json": "old",
             "notes.txt": "mine", "renders/my_sketch.png": "mine", f".grid.png.tmp-{4194304 + 7}-0123abcd": "half"}
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return files


def _snapshot(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _baseline(iters=1):
    config = method_preset("baseline")  # local loss only: the fastest real run
    config.ltu.iters = iters
    config.inversion.w_avg = "mapping"  # no w_avg file here: the inputs under test fail, not its absence
    return config


@pytest.mark.parametrize("identity", [Identity("latent", "missing.pt"), Identity("photo", "face.jpg")],
                         ids=["missing latent", "photo without encoder"])
def test_overwrite_keeps_earlier_results_when_an_input_fails(tiny_generator_factory, networks, tmp_path, identity):
    out = tmp_path / "out"
    _earlier_results(out)
    before = _snapshot(out)
    (tmp_path / "face.jpg").write_bytes(b"not even a photo")
    identity = Identity(identity.kind, str(tmp_path / identity.value))
    with pytest.raises(GuideError, match="not found|missing"):
        run_erase(identity, out, tiny_generator_factory(), _baseline(), networks, overwrite=True,
                  checkpoint_dir=tmp_path / "no-checkpoints", progress=False, log=lambda m: None)
    assert _snapshot(out) == before


def test_failed_inputs_leave_no_output_folder(tiny_generator_factory, networks, tmp_path):
    with pytest.raises(GuideError, match="latent file not found"):
        run_erase(Identity("latent", str(tmp_path / "missing.pt")), tmp_path / "new" / "out", tiny_generator_factory(),
                  _baseline(), networks, progress=False, log=lambda m: None)
    assert not (tmp_path / "new").exists()


def test_resume_refuses_a_folder_without_saved_state(tiny_generator_factory, networks, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    from guide.io.folders import OutputFolderError

    with pytest.raises(OutputFolderError, match="holds no resumable run"):
        _run(tiny_generator_factory, networks, out, config=_baseline(), resume=True)
    assert _snapshot(out) == {"notes.txt": b"mine"}


def test_an_input_inside_the_output_folder_is_never_overwritten(tiny_generator_factory, networks, tmp_path):
    """`guide erase --latent erased/latents.pt --out erased --overwrite` would delete its own input."""
    out = tmp_path / "out"
    _earlier_results(out)
    G = tiny_generator_factory()
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.z_dim), torch.zeros(1, 25))
    torch.save({"w_u": w}, out / "latents.pt")
    before = _snapshot(out)
    from guide.io.folders import OutputFolderError

    with pytest.raises(OutputFolderError, match="is an input of this run"):
        run_erase(Identity("latent", str(out / "latents.pt")), out, G, _baseline(), networks, overwrite=True,
                  progress=False, log=lambda m: None)
    assert _snapshot(out) == before


@pytest.mark.slow
def test_overwrite_replaces_only_the_runs_own_files(tiny_generator_factory, networks, tmp_path):
    out = tmp_path / "out"
    _earlier_results(out)
    _run(tiny_generator_factory, networks, out, config=_baseline(), overwrite=True, views=1)
    files = _snapshot(out)
    assert files["notes.txt"] == b"mine" and files["renders/my_sketch.png"] == b"mine"
    assert "renders/before_10.png" not in files  # the earlier run's 11-view renders are gone ...
    assert "audit.json" not in files  # ... and so is the audit of the erasure this run replaced
    assert files["generator.json"] != b"old" and "renders/before_00.png" in files  # ... replaced by this run's
    assert not any(".tmp-" in name for name in files)  # the interrupted write's leftover is cleaned up


# ------------------------------------------------------- --resume on damaged or foreign state


@pytest.fixture(scope="module")
def interrupted(tiny_generator_factory, random_lpips, tiny_id_loss, tmp_path_factory):
    """An erase folder stopped after step 1 of 2 (state saved at step 1)."""
    out = tmp_path_factory.mktemp("interrupted") / "out"

    class Killed(BaseException):
        pass

    def kill(step, values):
        raise Killed()

    with pytest.raises(Killed):
        run_erase(Identity("random", 5), out, tiny_generator_factory(), _baseline(2),
                  Networks(random_lpips, tiny_id_loss), checkpoint_every=1, on_step=kill, progress=False,
                  log=lambda m: None)
    return out


def _damage_state(path, change):
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)


DAMAGE = {
    "truncated state": (lambda out: (out / "checkpoint/state.pt").write_bytes(
        (out / "checkpoint/state.pt").read_bytes()[:500]), "truncated or corrupt"),
    "state of step 1e6": (lambda out: _damage_state(out / "checkpoint/state.pt", lambda s: s.update(step=10**6)),
                          "claims step 1000000"),
    "stride-0 optimizer state": (lambda out: _damage_state(out / "checkpoint/state.pt", lambda s: s["optimizer"][
        "state"][0].update(exp_avg=torch.zeros(1).expand(7, 7))), "has shape"),
    "not a state": (lambda out: torch.save({"weights": torch.ones(2)}, out / "checkpoint/state.pt"),
                    "not a training state"),
    "missing losses.jsonl": (lambda out: (out / "losses.jsonl").unlink(), "losses.jsonl is missing"),
    "garbage losses.jsonl": (lambda out: (out / "losses.jsonl").write_text("{oops\n"), "not valid JSON"),
    "garbage config.json": (lambda out: (out / "config.json").write_text("\x00garbage"), "config.json"),
    "deep config.json": (lambda out: (out / "config.json").write_text("[" * 100000 + "]" * 100000), "nested deeper"),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_resume_with_damaged_state_is_one_line_and_writes_nothing(interrupted, tiny_generator_factory, networks,
                                                                   tmp_path, name):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(interrupted, out)
    damage, match = DAMAGE[name]
    damage(out)
    before = _snapshot(out)
    with pytest.raises(GuideError, match=match) as info:
        _run(tiny_generator_factory, networks, out, config=_baseline(2), resume=True, checkpoint_every=1)
    assert "\n" not in info.value.one_line()
    assert _snapshot(out) == before


def test_cli_checks_the_folder_and_values_before_loading_anything(tiny_generator_factory, tmp_path):
    """--out is checked before the generator is read (a broken one would be reported first
    otherwise); NaN/inf numbers and seeds beyond 64 bits are usage errors, not tracebacks."""
    save_generator(tiny_generator_factory(), tmp_path / "tiny")
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"\x80\x04garbage")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    runner = CliRunner()
    base = ["erase", "--random-seed", "1", "--random-networks", "--iters", "1", "--method", "baseline"]
    result = runner.invoke(cli, [*base, "--generator", str(broken), "--out", str(out)])
    assert result.exit_code == 2 and "is not empty" in result.output, result.output
    for option, value in (("--lr", "nan"), ("--local-mse", "inf"), ("--seed", str(2**64)),
                          ("--random-seed", str(2**70))):
        result = runner.invoke(cli, [*base, "--generator", str(tmp_path / "tiny.json"), "--out",
                                     str(tmp_path / "new"), option, value])
        assert result.exit_code == 2 and "Traceback" not in result.output and option in result.output, result.output
    assert not (tmp_path / "new").exists()
