"""One erasure, start to finish: identity latent → UFO target → LTU → outputs.

`run_erase` is the pipeline behind `guide erase`, `guide demo` and batch jobs. Its output
folder holds: the unlearned generator (generator.safetensors + generator.json; optionally
generator.pkl in EG3D's format), renders/before_XX.png and renders/after_XX.png of the erased
identity from 11 yaws, renders/target_XX.png, grid.png (before / after / target rows),
losses.jsonl + losses.png, latents.pt (w_u, w_t), config.json (every setting and the
checkpoints' sha256) and metrics.json. Every file is written atomically; resume state lives
in checkpoint/state.pt.

Every input (generator, networks, w_avg, the identity's latent or photo) is loaded before
the folder is touched. ``--overwrite`` then removes only the files listed in
:data:`ERASE_OUTPUTS` (a user's notes in the folder stay), ``--resume`` needs a saved state,
and no input may be one of the files the run writes (:mod:`guide.io.folders`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import torch

import guide
from guide.config import EraseConfig
from guide.errors import GuideError
from guide.io.atomic import write_bytes_atomic, write_text_atomic
from guide.io.folders import RESUME, open_output_folder, plan_output_folder
from guide.render import camera_for, grid, png_bytes, render_views, save_images
from guide.trainer import LTUTrainer, NonFiniteLossError
from guide.ufo import ufo_target

W_AVG_FILE = "w_avg_ffhqrebalanced512-128.pt"
STATE_FILE = "checkpoint/state.pt"
READ_EVERY_ON_ACCELERATOR = 20  # steps between reads of the loss terms from a GPU (each read waits for it)

#: Every file an erase (and `guide eval` on its folder) writes, relative to the folder; the
#: only files --overwrite removes.
ERASE_OUTPUTS = (
    "config.json", "latents.pt", "losses.jsonl", "losses.png", "grid.png", "metrics.json", "report.html",
    "generator.safetensors", "generator.json", "generator.pkl",
    "renders/before_*.png", "renders/after_*.png", "renders/target*.png", STATE_FILE,
    "audit.json", "audit.png", "audit_attack.png",  # `guide audit` of this erasure: stale once it is replaced
)


class ResumeError(GuideError):
    """The saved state of an interrupted run cannot be continued (unreadable, or another run's)."""


@dataclass
class Identity:
    """Who to erase: a photo, a saved latent, a random sample of the generator (Random scenario),
    or photo number `index` of a folder of photos (the reference's OOD protocol: the whole folder
    is inverted in one batch and the other photos are the identities that must stay)."""

    kind: str  # 'photo' | 'latent' | 'random' | 'folder'
    value: Union[str, int]
    index: Optional[int] = None  # folder only: which photo (sorted by file name) is erased

    def describe(self) -> str:
        return {"photo": f"photo {self.value}", "latent": f"latent {self.value}",
                "random": f"random identity (seed {self.value})",
                "folder": f"photo {self.index} of folder {self.value}"}[self.kind]

    def to_dict(self) -> dict:
        """The config.json record (``index`` only for folders)."""
        out = {"kind": self.kind, "value": self.value}
        if self.kind == "folder":
            out["index"] = self.index
        return out


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


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def needs_w_avg_file(identity: Identity) -> bool:
    """Photo, folder and latent erasures: GOAE latents are offsets from the w_avg file's mean."""
    return identity.kind in ("photo", "folder", "latent")


def w_avg_problem(identity: Identity, config: EraseConfig, checkpoint_dir: Optional[Path]) -> Optional[str]:
    """Why `identity` cannot be erased with the mean latent `config` asks for (one line), or None:
    photo, folder and latent erasures with ``w_avg: file`` need `w_avg_ffhqrebalanced512-128.pt`
    (the inversion adds it, and the UFO target is taken relative to it)."""
    if config.inversion.w_avg != "file" or not needs_w_avg_file(identity):
        return None
    path = Path(checkpoint_dir) / W_AVG_FILE if checkpoint_dir is not None else None
    if path is not None and path.is_file():
        return None
    return (f"missing {path if path is not None else W_AVG_FILE}: GOAE latents are offsets from that mean latent "
            "(put the file in the checkpoints folder, or pass --w-avg mapping to use the generator's own mean, "
            "which shifts w_u and the target)")


def load_w_avg(G, checkpoint_dir: Optional[Path], device, choice: str = "file") -> tuple[torch.Tensor, str]:
    """[1,num_ws,w_dim] mean latent and where it came from.

    ``choice="file"`` (the reference's): `w_avg_ffhqrebalanced512-128.pt` ([14,512]) from the
    checkpoints folder when it is there; otherwise, and for ``choice="mapping"``, the generator's
    tracked mean `mapping.w_avg` broadcast to every row (the quantity EG3D's truncation uses),
    and the source says so. Photo and latent erasures refuse the fallback (:func:`w_avg_problem`)."""
    path = Path(checkpoint_dir) / W_AVG_FILE if checkpoint_dir is not None else None
    if choice == "file" and path is not None and path.is_file():
        from guide.inversion import load_w_avg as read_w_avg

        return read_w_avg(path, device, num_ws=G.num_ws, w_dim=G.w_dim), str(path)
    w_avg = G.backbone.mapping.w_avg.detach().reshape(1, 1, -1).repeat(1, G.num_ws, 1).to(device)
    if choice == "mapping":
        return w_avg, "generator mapping.w_avg (--w-avg mapping)"
    return w_avg, "generator mapping.w_avg (no w_avg file in the checkpoints folder)"


def folder_photos(folder: Union[str, Path]) -> List[Path]:
    """The image files of a folder, sorted by name (the reference's order; other files skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise GuideError(f"photo folder not found: {root}")
    photos = sorted((p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                    key=lambda p: p.name)
    if not photos:
        raise GuideError(f"{root} holds no photos ({', '.join(IMAGE_SUFFIXES)})")
    return photos


def folder_latents(identity: Identity, config: EraseConfig, w_avg: torch.Tensor, checkpoint_dir, device,
                   photo_models=None) -> tuple[torch.Tensor, List[Path]]:
    """w [N,num_ws,w_dim] of every photo of a folder identity, inverted in one batch, and the photos."""
    from guide.inversion import invert_photos

    photos = folder_photos(identity.value)
    if identity.index is None or not 0 <= identity.index < len(photos):
        raise GuideError(f"--target-index {identity.index} is out of range: {identity.value} holds "
                         f"{len(photos)} photos (0 to {len(photos) - 1}, sorted by file name)")
    w = invert_photos(photos, w_avg=w_avg, checkpoint_dir=checkpoint_dir, device=device,
                      aligned=config.inversion.aligned, models=photo_models, seed=config.inversion_seed)
    return w, photos


def identity_latent(identity: Identity, G, config: EraseConfig, w_avg: torch.Tensor, checkpoint_dir, device,
                    photo_models=None):
    """w_u [1,num_ws,w_dim] for the identity. A photo is inverted with `photo_models`
    (a guide.inversion.PhotoModels keeping the encoder and face detector) when given, as
    `config.inversion` says (aligned input, deterministic or stochastic)."""
    ltu = config.ltu
    problem = w_avg_problem(identity, config, checkpoint_dir) if identity.kind in ("photo", "folder") else None
    if problem:  # the inversion adds the mean latent; a saved latent is used as it is
        raise GuideError(problem)
    if identity.kind == "random":
        z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(int(identity.value))).to(device)
        c = camera_for(ltu.camera, 0.0, 0.0, device)
        with torch.no_grad():
            return G.mapping(z, c, truncation_psi=ltu.truncation_psi, truncation_cutoff=ltu.truncation_cutoff)
    if identity.kind == "latent":
        from guide.io.state_files import load_state_file

        path = Path(identity.value)
        if not path.is_file():
            raise GuideError(f"latent file not found: {path}")
        value = load_state_file(path)  # one line for any unreadable or implausible file
        w = (value.get("w", value.get("w_u")) if isinstance(value, dict) else value)  # guide invert / erase
        if not isinstance(w, torch.Tensor) or not w.is_floating_point() or w.numel() != G.num_ws * G.w_dim:
            raise GuideError(f"{path} holds no [1,{G.num_ws},{G.w_dim}] latent (expected a float tensor or a dict "
                             "with 'w' or 'w_u')")
        if not bool(torch.isfinite(w).all()):
            raise GuideError(f"{path}: the latent holds NaN or infinity")
        return w.float().reshape(1, G.num_ws, G.w_dim).to(device)
    if identity.kind == "photo":
        from guide.inversion import invert_photo

        return invert_photo(identity.value, w_avg=w_avg, checkpoint_dir=checkpoint_dir, device=device,
                            models=photo_models, aligned=config.inversion.aligned, seed=config.inversion_seed)
    if identity.kind == "folder":
        w, _ = folder_latents(identity, config, w_avg, checkpoint_dir, device, photo_models)
        return w[identity.index:identity.index + 1]
    raise ValueError(f"unknown identity kind {identity.kind!r}")


def load_networks(checkpoint_dir, device, random_weights: bool = False) -> Networks:
    """LPIPS-VGG16 and the IR-SE50 identity loss from the checkpoints folder (or random weights)."""
    from guide.identity import IDLoss, ir_se50
    from guide.perceptual import lpips_vgg

    if random_weights:
        torch.manual_seed(0)
        return Networks(lpips_vgg(random_backbone=True, device=device), IDLoss(ir_se50(device=device)),
                        note="LPIPS and ArcFace with RANDOM weights (demo)")
    vgg, ir_se = require_network_files(checkpoint_dir)
    lp = lpips_vgg(vgg, device=device)
    arcface = ir_se50(weights=ir_se, device=device)
    return Networks(lp, IDLoss(arcface))


NETWORK_FILES = ("vgg16-397923af.pth", "model_ir_se50.pth")


def require_network_files(checkpoint_dir) -> List[Path]:
    """Paths of LTU's loss-network weights (LPIPS' VGG16, ArcFace IR-SE50); one line if one is missing."""
    from guide.checkpoints import require_checkpoint

    return [Path(require_checkpoint(name, checkpoint_dir)) for name in NETWORK_FILES]


# ----------------------------------------------------------------------------- outputs


def has_saved_state(out_dir: Union[str, Path]) -> bool:
    """Whether `out_dir` holds a training state that a resume continues from."""
    return (Path(out_dir) / STATE_FILE).is_file()


def generator_files(generator_path) -> List[Path]:
    """The files a generator argument reads (a .pkl, or our .json + .safetensors pair)."""
    if generator_path is None:
        return []
    path = Path(generator_path)
    if path.suffix == ".pkl":
        return [path]
    from guide.io import generator_paths

    return [path, *generator_paths(path)]


def erase_inputs(identity: Identity, generator_path=None) -> List[Path]:
    """Files an erase reads that its output folder must not overwrite."""
    own = [Path(str(identity.value))] if identity.kind in ("photo", "latent", "folder") else []
    return own + generator_files(generator_path)


def plan_erase_folder(out_dir, *, overwrite: bool = False, resume: bool = False, inputs=()) -> str:
    """How an erase uses `out_dir` (guide.io.folders NEW / RESUME / REPLACE); one-line error when
    it cannot. Changes nothing, so commands call it before loading anything."""
    return plan_output_folder(out_dir, patterns=ERASE_OUTPUTS, overwrite=overwrite, resume=resume,
                              resumable=has_saved_state(out_dir), inputs=inputs)


def check_export_source(generator_path) -> None:
    """--export-pkl writes EG3D's format into a copy of the source pickle: it needs one."""
    if generator_path is None or Path(generator_path).suffix != ".pkl":
        raise GuideError("--export-pkl needs the source generator as an EG3D .pkl (--generator)")


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
        "identity": identity.to_dict(),
        "erase": config.to_dict(),
        "device": str(device),
        "source_generator": str(generator_path) if generator_path else "built-in",
        "source_generator_sha256": _sha256(generator_path),
        "w_avg": w_avg_source,
        "networks": networks.note or "LPIPS-VGG16 + ArcFace IR-SE50 from the checkpoints folder",
        "checkpoints": {name: _sha256(Path(checkpoint_dir) / name) for name in
                        (*NETWORK_FILES, "encoder_FFHQ.pt", W_AVG_FILE)}
        if checkpoint_dir else {},
    }


def write_tensors(path: Path, **tensors) -> None:
    """torch.save a dict of tensors (moved to CPU) atomically."""
    import io

    buffer = io.BytesIO()
    torch.save({k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in tensors.items()}, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def render_identity(G_src, G, w_u: torch.Tensor, w_t: torch.Tensor, out_dir: Path, camera,
                    views: Optional[int] = None, renders: str = "paired", seed: int = 0) -> Dict[str, float]:
    """renders/before|after|target_XX.png and grid.png of one identity; returns the pixel metrics.
    `renders="random"`: fresh noise and ray jitter per render (seeded by `seed`), as the reference."""
    from guide.cameras import view_yaws
    from guide.render import render_generator

    yaws = None if views is None else view_yaws(views, camera.yaw_range)

    def views_of(G_, w, stream):
        if renders == "paired":
            return render_views(G_, w, camera, yaws)
        return render_views(G_, w, camera, yaws, deterministic=False,
                            generator=render_generator(seed, stream, device=w.device))

    before = views_of(G_src, w_u, 0)
    after = views_of(G, w_u, 1)
    target = views_of(G_src, w_t, 2)
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


def save_training_state(trainer: LTUTrainer, out_dir: Path, history: List[dict]) -> None:
    """Write the resume state (checkpoint/state.pt) and losses.jsonl of a training run, atomically."""
    import io

    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    (out_dir / "checkpoint").mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "losses.jsonl", "".join(json.dumps(h) + "\n" for h in history))
    write_bytes_atomic(out_dir / STATE_FILE, buffer.getvalue())


def train_ltu(trainer: LTUTrainer, out_dir: Path, *, resuming: bool = False, checkpoint_every: int = 100,
              progress: bool = True, log: Callable[[str], None] = print,
              on_step: Optional[Callable[[int, Dict[str, float]], None]] = None,
              desc: str = "unlearning", read_every: Optional[int] = None) -> List[dict]:
    """Run the trainer to config.iters with resumable state in out_dir (checkpoint/state.pt and
    losses.jsonl, saved every `checkpoint_every` steps and at the end); returns the loss history.

    `read_every`: steps between reads of the loss terms from the device (default: every step on
    the CPU, READ_EVERY_ON_ACCELERATOR on a GPU, where each read waits for it). Every step is
    still logged, and the trainer also reads at every checkpoint, so a checkpoint holds the
    state of its step."""
    iters = trainer.config.iters
    history: list = []
    losses_path = out_dir / "losses.jsonl"
    if resuming:
        history = restore_training(trainer, out_dir)
        log(f"resuming at step {trainer.step_index} of {iters}")

    def save_state():
        save_training_state(trainer, out_dir, history)

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
        if read_every is None:
            read_every = 1 if trainer.device.type == "cpu" else READ_EVERY_ON_ACCELERATOR
        trainer.run(callback=callback, read_every=read_every,
                    read_at=(lambda step: step % checkpoint_every == 0) if checkpoint_every else None)
    except NonFiniteLossError as exc:
        raise GuideError(f"{exc}: last good checkpoint in {out_dir / STATE_FILE}") from None
    finally:
        if bar is not None:
            bar.close()
    save_state()
    return history


def _resume_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def _check_optimizer_state(optimizer: Any, params: List[torch.Tensor], path: Path) -> None:
    """Per-parameter optimizer tensors must have their parameter's shape (Adam would not check)."""
    per_param = optimizer.get("state") if isinstance(optimizer, dict) else None
    if not isinstance(per_param, dict) or not isinstance(optimizer.get("param_groups"), list):
        raise ResumeError(f"{path}: its optimizer state is not an optimizer's state_dict")
    for index, entry in per_param.items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(entry, dict):
            raise ResumeError(f"{path}: optimizer state for parameter {index!r}, which this run does not have")
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape != params[index].shape:
                raise ResumeError(f"{path}: optimizer {name} of parameter {index} has shape {list(value.shape)}, "
                                  f"expected {list(params[index].shape)}")


def restore_training(trainer: LTUTrainer, out_dir: Path) -> List[dict]:
    """Load checkpoint/state.pt into `trainer` and return the loss history of the steps it
    covers (losses.jsonl). Anything unreadable, another run's, or claiming more steps than
    the run has is a one-line :class:`ResumeError`; nothing is written."""
    from guide.io.state_files import load_state_file

    path, losses_path = out_dir / STATE_FILE, out_dir / "losses.jsonl"
    state = load_state_file(path)
    needed = ("step", "synthesis", "optimizer", "cpu_rng", "device_rng")
    if not isinstance(state, dict) or any(k not in state for k in needed):
        raise ResumeError(f"{path}: not a training state of this toolkit (needs {', '.join(needed)})")
    step, iters = state["step"], trainer.config.iters
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= iters:
        raise ResumeError(f"{path}: claims step {step!r}, outside this run's 0..{iters}")
    _check_optimizer_state(state["optimizer"], list(trainer.trainable), path)
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ResumeError(f"{path}: does not fit this run ({_resume_line(exc)})") from None
    if not losses_path.is_file():
        raise ResumeError(f"--resume: {losses_path} is missing (it holds the loss history of the saved steps)")
    from guide.io.documents import parse_json

    lines = [line for line in losses_path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    if len(lines) < step:
        raise ResumeError(f"{losses_path}: {len(lines)} steps recorded, but the saved state is at step {step}")
    history = [parse_json(line, f"{losses_path} line {i + 1}", ResumeError) for i, line in enumerate(lines[:step])]
    if not all(isinstance(h, dict) for h in history):
        raise ResumeError(f"{losses_path}: every line must be a JSON object")
    return history


def _check_resumed_settings(out_dir: Path, settings: dict) -> None:
    """The interrupted run in `out_dir` used the same erase settings and identity."""
    from guide.io.documents import load_json

    saved = load_json(out_dir / "config.json", ResumeError) if (out_dir / "config.json").is_file() else None
    if not isinstance(saved, dict):
        raise ResumeError(f"--resume: {out_dir / 'config.json'} is missing or not a settings record")
    current = json.loads(json.dumps({k: settings[k] for k in ("erase", "identity")}, default=str))
    if saved.get("erase") != current["erase"] or saved.get("identity") != current["identity"]:
        raise ResumeError(f"--resume: the settings differ from the interrupted run in {out_dir}")


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
    report their own evaluation). `photo_models`: see :func:`identity_latent`. A folder identity
    also stores the other photos' latents (latents.pt `w_others`), from which ID_others is measured."""
    out_dir = Path(out_dir)
    device = torch.device(device)
    plan = plan_erase_folder(out_dir, overwrite=overwrite, resume=resume, inputs=erase_inputs(identity, generator_path))
    if export_pkl:
        check_export_source(generator_path)
    problem = w_avg_problem(identity, config, checkpoint_dir)  # reported before anything is loaded or written
    if problem:
        raise GuideError(problem)
    torch.manual_seed(config.seed)
    G_src = G_src.to(device).eval().requires_grad_(False)

    # every input first: a missing latent or encoder, a bad w_avg must not cost earlier results
    w_avg, w_avg_source = load_w_avg(G_src, checkpoint_dir, device, config.inversion.w_avg)
    others: dict = {}
    if identity.kind == "folder":
        w_all, photos = folder_latents(identity, config, w_avg, checkpoint_dir, device, photo_models)
        w_u = w_all[identity.index:identity.index + 1]
        keep = [i for i in range(len(photos)) if i != identity.index]
        others = {"w_others": w_all[keep], "others": [photos[i].name for i in keep]}
    else:
        w_u = identity_latent(identity, G_src, config, w_avg, checkpoint_dir, device, photo_models)
    w_t = ufo_target(config.target.method, w_u, w_avg, config.target.distance)

    settings = erase_settings(identity, config, device, generator_path, w_avg_source, networks, checkpoint_dir)
    if others:
        settings["folder"] = {"erased": Path(photos[identity.index]).name, "others": others["others"]}
    resuming = plan == RESUME
    if resuming:
        _check_resumed_settings(out_dir, settings)
    trainer = LTUTrainer(G_src, w_u, w_t, config.ltu, lpips=networks.lpips.to(device),
                         id_loss=networks.id_loss.to(device) if networks.id_loss is not None else None,
                         seed=config.seed)
    open_output_folder(out_dir, plan, ERASE_OUTPUTS)
    if not resuming:
        write_json(out_dir / "config.json", settings)
        write_tensors(out_dir / "latents.pt", w_u=w_u, w_t=w_t,
                      **({"w_others": others["w_others"]} if others else {}))
    history = train_ltu(trainer, out_dir, resuming=resuming, checkpoint_every=checkpoint_every,
                        progress=progress, log=log, on_step=on_step)

    result = finish(trainer, G_src, w_u, w_t, history, out_dir, config, settings, generator_path,
                    export_pkl, log, views=views)
    result.metrics = identity_metrics(out_dir, checkpoint_dir, device, log, note=metrics_note) or result.metrics
    return result


CPU_SECONDS_PER_STEP = 92.0  # one full-size LTU step on 2 CPU cores, neural rendering 64 (docs/performance.md)
GPU_SECONDS_PER_STEP = 0.22  # the same step on an H200 with TF32, neural rendering 128 (docs/performance.md)


def cpu_warning(G, iters: int, device) -> Optional[str]:
    """One line before a full-size (512²) erase on the CPU, with the expected duration: the
    measured CPU step (2 cores, at the *reduced* neural rendering 64, so a lower bound) times
    `iters`; None on a GPU or for small generators."""
    if torch.device(device).type != "cpu" or int(getattr(G, "img_resolution", 0)) < 512:
        return None
    return (f"warning: a full-size erase on the CPU takes long: {iters} steps x ~{CPU_SECONDS_PER_STEP:.0f} s "
            f"(measured on 2 cores) = {_duration(iters * CPU_SECONDS_PER_STEP)} or more; on a GPU about "
            f"{_duration(iters * GPU_SECONDS_PER_STEP)} (--device cuda)")


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


IDENTITY_EVAL_FILE = "CurricularFace_Backbone.pth"


def identity_metrics(out_dir: Path, checkpoint_dir, device, log, *, note: bool = True) -> Optional[dict]:
    """ID similarity of the erased identity before/after (CurricularFace over the 11 views) and,
    for a folder erasure, ID_others over its other photos, merged into metrics.json when the
    evaluation network is in the checkpoints folder; `guide eval all` adds the FIDs. `note`: log it
    when the network is absent."""
    if checkpoint_dir is None or not (Path(checkpoint_dir) / IDENTITY_EVAL_FILE).is_file():
        if note:
            log(f"metrics.json: pixel metrics only ({IDENTITY_EVAL_FILE} not in the checkpoints folder; "
                "run `guide eval all` once it is)")
        return None
    from guide.evaluate import EvalNetworks, Others, eval_id

    # the other photos of a folder erasure (the reference's ID_others); no random others here
    others = Others(kind="auto", count=0)
    try:
        return eval_id(out_dir, EvalNetworks(checkpoint_dir, device), others=others, progress=False)
    except GuideError as exc:
        log(f"identity metrics skipped: {exc}")
        return None


def _earlier_metrics(path: Path, log) -> dict:
    """metrics.json as it stands (e.g. a resumed run's); an unreadable one is replaced."""
    from guide.io.documents import load_json

    if not path.is_file():
        return {}
    try:
        metrics = load_json(path)
    except GuideError as exc:
        log(f"replacing unreadable {path.name}: {exc}")
        return {}
    return metrics if isinstance(metrics, dict) else {}


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
        check_export_source(generator_path)
        from guide.io import export_eg3d_pkl

        export_eg3d_pkl(G, like=generator_path, out=out_dir / "generator.pkl", log=log)

    pixel = render_identity(G_src, G, w_u, w_t, out_dir, config.ltu.camera, views, config.renders, config.seed)
    write_bytes_atomic(out_dir / "losses.png", loss_curve_png(history))

    metrics_path = out_dir / "metrics.json"
    metrics = _earlier_metrics(metrics_path, log)
    metrics.update({
        "steps": trainer.step_index,
        "final_losses": history[-1] if history else {},
        **pixel,
    })
    write_json(metrics_path, metrics)
    log(f"erased {settings['identity']['kind']} identity in {trainer.step_index} steps -> {out_dir}")
    return EraseResult(out_dir, trainer.step_index, history[-1] if history else {}, metrics)
