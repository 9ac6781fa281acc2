"""One erasure, start to finish: identity latent → UFO target → LTU → outputs.

`run_erase` is the pipeline behind `guide erase`, `guide demo` and batch jobs. Its output
folder holds: the unlearned generator (generator.safetensors + generator.json; optionally
generator.pkl in EG3D's format), renders/before_XX.png and renders/after_XX.png of the erased
identity from 11 yaws, renders/target_XX.png, grid.png (before / after / target rows),
losses.jsonl + losses.png, latents.pt (w_u, w_t), config.json (every setting and the
checkpoints' sha256) and metrics.json. Every file is written atomically; resume state lives
in checkpoint/state.pt.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import torch

import guide
from guide.config import EraseConfig
from guide.errors import GuideError
from guide.io.atomic import write_bytes_atomic, write_text_atomic
from guide.render import camera_for, grid, png_bytes, render_views, save_images
from guide.trainer import LTUTrainer, NonFiniteLossError
from guide.ufo import ufo_target

W_AVG_FILE = "w_avg_ffhqrebalanced512-128.pt"
STATE_FILE = "checkpoint/state.pt"


class OutputExistsError(GuideError):
    """The output folder already holds results."""


@dataclass
class Identity:
    """Who to erase: a photo, a saved latent, or a random sample of the generator (Random scenario)."""

    kind: str  # 'photo' | 'latent' | 'random'
    value: Union[str, int]

    def describe(self) -> str:
        return {"photo": f"photo {self.value}", "latent": f"latent {self.value}",
                "random": f"random identity (seed {self.value})"}[self.kind]


@dataclass
class Networks:
    """The loss networks of LTU. `id_loss=None` disables the identity terms."""

    lpips: torch.nn.Module
    id_loss: Optional[torch.nn.Module]
    note: str = ""


@dataclass
class EraseResult:
    out_dir: Path
    steps: int
    final_losses: Dict[str, float] = field(default_factory=dict)
    metrics: Dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------ inputs


def load_w_avg(G, checkpoint_dir: Optional[Path], device) -> tuple[torch.Tensor, str]:
    """[1,num_ws,w_dim] mean latent and where it came from.

    The reference loads `w_avg_ffhqrebalanced512-128.pt` ([14,512]); we use that file when it
    is in the checkpoints folder, else the generator's own tracked mean `mapping.w_avg`
    broadcast to every row (the same quantity EG3D's truncation uses)."""
    if checkpoint_dir is not None and (Path(checkpoint_dir) / W_AVG_FILE).is_file():
        from guide.inversion import load_w_avg as read_w_avg

        path = Path(checkpoint_dir) / W_AVG_FILE
        return read_w_avg(path, device, num_ws=G.num_ws, w_dim=G.w_dim), str(path)
    w_avg = G.backbone.mapping.w_avg.detach().reshape(1, 1, -1).repeat(1, G.num_ws, 1).to(device)
    return w_avg, "generator mapping.w_avg (no w_avg file in the checkpoints folder)"


def identity_latent(identity: Identity, G, config: EraseConfig, w_avg: torch.Tensor, checkpoint_dir, device,
                    photo_models=None):
    """w_u [1,num_ws,w_dim] for the identity. A photo is inverted with `photo_models`
    (a guide.inversion.PhotoModels keeping the encoder and face detector) when given."""
    ltu = config.ltu
    if identity.kind == "random":
        z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(int(identity.value))).to(device)
        c = camera_for(ltu.camera, 0.0, 0.0, device)
        with torch.no_grad():
            return G.mapping(z, c, truncation_psi=ltu.truncation_psi, truncation_cutoff=ltu.truncation_cutoff)
    if identity.kind == "latent":
        path = Path(identity.value)
        if not path.is_file():
            raise GuideError(f"latent file not found: {path}")
        try:
            value = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - one line for any unreadable file
            raise GuideError(f"cannot read latent file {path}: {type(exc).__name__}: {exc}") from None
        w = (value.get("w", value.get("w_u")) if isinstance(value, dict) else value)  # guide invert / erase
        if not isinstance(w, torch.Tensor) or w.numel() != G.num_ws * G.w_dim:
            raise GuideError(f"{path} holds no [1,{G.num_ws},{G.w_dim}] latent (expected a tensor or a dict with 'w' or 'w_u')")
        return w.float().reshape(1, G.num_ws, G.w_dim).to(device)
    if identity.kind == "photo":
        from guide.inversion import invert_photo

        return invert_photo(identity.value, w_avg=w_avg, checkpoint_dir=checkpoint_dir, device=device,
                            models=photo_models)
    raise ValueError(f"unknown identity kind {identity.kind!r}")


def load_networks(checkpoint_dir, device, random_weights: bool = False) -> Networks:
    """LPIPS-VGG16 and the IR-SE50 identity loss from the checkpoints folder (or random weights)."""
    from guide.identity import IDLoss, ir_se50
    from guide.perceptual import lpips_vgg

    if random_weights:
        torch.manual_seed(0)
        return Networks(lpips_vgg(random_backbone=True, device=device), IDLoss(ir_se50(device=device)),
                        note="LPIPS and ArcFace with RANDOM weights (demo)")
    from guide.checkpoints import require_checkpoint

    lp = lpips_vgg(require_checkpoint("vgg16-397923af.pth", checkpoint_dir), device=device)
    arcface = ir_se50(weights=require_checkpoint("model_ir_se50.pth", checkpoint_dir), device=device)
    return Networks(lp, IDLoss(arcface))


# ----------------------------------------------------------------------------- outputs


def has_saved_state(out_dir: Union[str, Path]) -> bool:
    """Whether `out_dir` holds a training state that a resume continues from."""
    return (Path(out_dir) / STATE_FILE).is_file()


def prepare_out_dir(out_dir: Path, overwrite: bool, resume: bool) -> bool:
    """Create the folder; returns True when resuming from a saved state."""
    if resume and has_saved_state(out_dir):
        return True
    if out_dir.exists() and any(out_dir.iterdir()) and not resume:
        if not overwrite:
            raise OutputExistsError(f"output folder {out_dir} is not empty (use --overwrite, or --resume to continue)")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return False


def write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def loss_curve_png(history: list, width: int = 720, height: int = 360) -> bytes:
    """A small line plot of the loss terms (no plotting library needed)."""
    import numpy as np
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    keys = [k for k in ("loss", "local", "adjacency", "global") if history and k in history[0]]
    colours = {"loss": (0, 0, 0), "local": (200, 30, 30), "adjacency": (30, 90, 200), "global": (20, 150, 60)}
    left, right, top, bottom = 60, width - 10, 10, height - 30
    values = np.array([[h[k] for k in keys] for h in history], dtype=float) if history else np.zeros((0, 1))
    vmax = float(values.max()) if values.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    draw.rectangle([left, top, right, bottom], outline=(160, 160, 160))
    draw.text((5, top), f"{vmax:.3g}", fill=(0, 0, 0))
    draw.text((5, bottom - 10), "0", fill=(0, 0, 0))
    draw.text((left, bottom + 8), f"step 1 … {len(history)}", fill=(0, 0, 0))
    for j, key in enumerate(keys):
        if len(history) < 2:
            break
        xs = left + (right - left) * np.arange(len(history)) / (len(history) - 1)
        ys = bottom - (bottom - top) * values[:, j] / vmax
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colours[key], width=2)
        draw.text((right - 90, top + 5 + 14 * j), key, fill=colours[key])
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _sha256(path) -> Optional[str]:
    from guide.io.hashing import sha256_file

    return sha256_file(path) if path is not None and Path(path).is_file() else None


def erase_settings(identity: Identity, config: EraseConfig, device, generator_path, w_avg_source: str,
                   networks: Networks, checkpoint_dir) -> dict:
    """The config.json record of one erasure: settings, sources and the checkpoints' sha256."""
    return {
        "guide_version": guide.__version__,
        "identity": dataclasses.asdict(identity),
        "erase": config.to_dict(),
        "device": str(device),
        "source_generator": str(generator_path) if generator_path else "built-in",
        "source_generator_sha256": _sha256(generator_path),
        "w_avg": w_avg_source,
        "networks": networks.note or "LPIPS-VGG16 + ArcFace IR-SE50 from the checkpoints folder",
        "checkpoints": {name: _sha256(Path(checkpoint_dir) / name) for name in
                        ("vgg16-397923af.pth", "model_ir_se50.pth", "encoder_FFHQ.pt", W_AVG_FILE)}
        if checkpoint_dir else {},
    }


def write_tensors(path: Path, **tensors) -> None:
    """torch.save a dict of tensors (moved to CPU) atomically."""
    import io

    buffer = io.BytesIO()
    torch.save({k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in tensors.items()}, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def render_identity(G_src, G, w_u: torch.Tensor, w_t: torch.Tensor, out_dir: Path, camera,
                    views: Optional[int] = None) -> Dict[str, float]:
    """renders/before|after|target_XX.png and grid.png of one identity; returns the pixel metrics."""
    from guide.cameras import view_yaws

    yaws = None if views is None else view_yaws(views, camera.yaw_range)
    before = render_views(G_src, w_u, camera, yaws)
    after = render_views(G, w_u, camera, yaws)
    target = render_views(G_src, w_t, camera, yaws)
    renders = Path(out_dir) / "renders"
    save_images(before, renders, "before")
    save_images(after, renders, "after")
    save_images(target, renders, "target")
    write_bytes_atomic(Path(out_dir) / "grid.png", png_bytes(grid([before, after, target], size=128)))
    return {
        "pixel_l1_before_after": float((after - before).abs().mean()),
        "pixel_l1_after_target": float((after - target).abs().mean()),
        "pixel_l1_before_target": float((before - target).abs().mean()),
    }


def train_ltu(trainer: LTUTrainer, out_dir: Path, *, resuming: bool = False, checkpoint_every: int = 100,
              progress: bool = True, log: Callable[[str], None] = print,
              on_step: Optional[Callable[[int, Dict[str, float]], None]] = None,
              desc: str = "unlearning") -> List[dict]:
    """Run the trainer to config.iters with resumable state in out_dir (checkpoint/state.pt and
    losses.jsonl, saved every `checkpoint_every` steps and at the end); returns the loss history."""
    iters = trainer.config.iters
    history: list = []
    losses_path = out_dir / "losses.jsonl"
    if resuming:
        state = torch.load(out_dir / STATE_FILE, map_location=trainer.device, weights_only=True)
        trainer.load_state_dict(state)
        history = [json.loads(line) for line in losses_path.read_text().splitlines()[: trainer.step_index]]
        log(f"resuming at step {trainer.step_index} of {iters}")

    def save_state():
        import io

        buffer = io.BytesIO()
        torch.save(trainer.state_dict(), buffer)
        (out_dir / "checkpoint").mkdir(parents=True, exist_ok=True)
        write_text_atomic(losses_path, "".join(json.dumps(h) + "\n" for h in history))
        write_bytes_atomic(out_dir / STATE_FILE, buffer.getvalue())

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=iters, initial=trainer.step_index, desc=desc, unit="step", dynamic_ncols=True)

    def callback(step: int, values: Dict[str, float]) -> None:
        history.append({"step": step, **values})
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in values.items() if k in ("loss", "local", "adjacency", "global")})
        if checkpoint_every and step % checkpoint_every == 0:
            save_state()
        if on_step is not None:
            on_step(step, values)

    try:
        trainer.run(callback=callback)
    except NonFiniteLossError as exc:
        raise GuideError(f"{exc}: last good checkpoint in {out_dir / STATE_FILE}") from None
    finally:
        if bar is not None:
            bar.close()
    save_state()
    return history


# ---------------------------------------------------------------------------- pipeline


def run_erase(
    identity: Identity,
    out_dir: Union[str, Path],
    G_src,
    config: EraseConfig,
    networks: Networks,
    *,
    checkpoint_dir: Optional[Path] = None,
    generator_path: Optional[Path] = None,
    device: Union[str, torch.device] = "cpu",
    overwrite: bool = False,
    resume: bool = False,
    checkpoint_every: int = 100,
    export_pkl: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_step: Optional[Callable[[int, Dict[str, float]], None]] = None,
    views: Optional[int] = None,
    metrics_note: bool = True,
    photo_models=None,
) -> EraseResult:
    """Erase `identity` from `G_src` and write every output into `out_dir` (see module doc).
    `views`: number of before/after/target renders (default: the 11 evaluation yaws).
    `metrics_note`: log it when metrics.json holds pixel metrics only (off in batches, which
    report their own evaluation). `photo_models`: see :func:`identity_latent`."""
    out_dir = Path(out_dir)
    device = torch.device(device)
    resuming = prepare_out_dir(out_dir, overwrite, resume)
    torch.manual_seed(config.seed)
    G_src = G_src.to(device).eval().requires_grad_(False)

    w_avg, w_avg_source = load_w_avg(G_src, checkpoint_dir, device)
    w_u = identity_latent(identity, G_src, config, w_avg, checkpoint_dir, device, photo_models)
    w_t = ufo_target(config.target.method, w_u, w_avg, config.target.distance)

    settings = erase_settings(identity, config, device, generator_path, w_avg_source, networks, checkpoint_dir)
    if resuming:
        saved = json.loads((out_dir / "config.json").read_text())
        current = json.loads(json.dumps({k: settings[k] for k in ("erase", "identity")}, default=str))
        if saved.get("erase") != current["erase"] or saved.get("identity") != current["identity"]:
            raise GuideError(f"--resume: the settings differ from the interrupted run in {out_dir}")
    else:
        write_json(out_dir / "config.json", settings)
        write_tensors(out_dir / "latents.pt", w_u=w_u, w_t=w_t)

    trainer = LTUTrainer(G_src, w_u, w_t, config.ltu, lpips=networks.lpips.to(device),
                         id_loss=networks.id_loss.to(device) if networks.id_loss is not None else None,
                         seed=config.seed)
    history = train_ltu(trainer, out_dir, resuming=resuming, checkpoint_every=checkpoint_every,
                        progress=progress, log=log, on_step=on_step)

    result = finish(trainer, G_src, w_u, w_t, history, out_dir, config, settings, generator_path,
                    export_pkl, log, views=views)
    result.metrics = identity_metrics(out_dir, checkpoint_dir, device, log, note=metrics_note) or result.metrics
    return result


IDENTITY_EVAL_FILE = "CurricularFace_Backbone.pth"


def identity_metrics(out_dir: Path, checkpoint_dir, device, log, *, note: bool = True) -> Optional[dict]:
    """ID similarity of the erased identity before/after (CurricularFace over the 11 views),
    merged into metrics.json when the evaluation network is in the checkpoints folder;
    `guide eval all` adds ID_others and the FIDs. `note`: log it when the network is absent."""
    if checkpoint_dir is None or not (Path(checkpoint_dir) / IDENTITY_EVAL_FILE).is_file():
        if note:
            log(f"metrics.json: pixel metrics only ({IDENTITY_EVAL_FILE} not in the checkpoints folder; "
                "run `guide eval all` once it is)")
        return None
    from guide.evaluate import EvalNetworks, Others, eval_id

    try:
        return eval_id(out_dir, EvalNetworks(checkpoint_dir, device), others=Others(kind="none"), progress=False)
    except GuideError as exc:
        log(f"identity metrics skipped: {exc}")
        return None


def finish(trainer, G_src, w_u, w_t, history, out_dir: Path, config: EraseConfig, settings: dict,
           generator_path, export_pkl: bool, log, views: Optional[int] = None) -> EraseResult:
    """Save the unlearned generator, renders, grid, curves and metrics."""
    from guide.io import Provenance, save_generator

    G = trainer.G.eval().requires_grad_(False)
    provenance = Provenance(method=config.method, source_checkpoint=settings["source_generator"],
                            source_sha256=settings["source_generator_sha256"],
                            hyperparameters=config.to_dict(), extra={"identity": settings["identity"]})
    save_generator(G, out_dir / "generator", provenance=provenance)
    if export_pkl:
        if generator_path is None or Path(generator_path).suffix != ".pkl":
            raise GuideError("--export-pkl needs the source generator as an EG3D .pkl (--generator)")
        from guide.io import export_eg3d_pkl

        export_eg3d_pkl(G, like=generator_path, out=out_dir / "generator.pkl")

    pixel = render_identity(G_src, G, w_u, w_t, out_dir, config.ltu.camera, views)
    write_bytes_atomic(out_dir / "losses.png", loss_curve_png(history))

    metrics_path = out_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics.update({
        "steps": trainer.step_index,
        "final_losses": history[-1] if history else {},
        **pixel,
    })
    write_json(metrics_path, metrics)
    log(f"erased {settings['identity']['kind']} identity in {trainer.step_index} steps -> {out_dir}")
    return EraseResult(out_dir, trainer.step_index, history[-1] if history else {}, metrics)
