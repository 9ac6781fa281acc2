"""`guide reproduce ood`: the reference's OOD experiment end to end, our numbers beside the published ones.

The reference (GUIDE's README) runs ``unlearn.py`` on its five-photo CelebA-HQ sample folder for
the baseline and for GUIDE, then ``evaluate_id.py`` and ``evaluate_fid.py``. Here, per method:

1. :func:`guide.erase.run_erase` with a folder identity: every photo of PHOTO_DIR fed to GOAE as
   an already aligned crop (``aligned``), inverted in one batch -- by default stochastically as
   the reference's encoder runs (seeded) -- with ``w_avg_ffhqrebalanced512-128.pt``; photo
   ``target_index`` is erased with the method's preset (paper defaults, 1000 steps); before/after
   renders of every photo from 11 yaws with random noise, as the reference renders them.
2. :func:`guide.evaluate.pipeline.eval_all`: ID over the erased photo's views, ID_others over
   the other photos' views, FID_pre and ΔFID_real under the paper's sampling protocol (5000
   samples per generator, independent noise), MTCNN at the reference's thresholds.

Then ``DIR/table.md`` and ``DIR/report.html``: one row per method, our value, the published
value (:mod:`guide.evaluate.reference`) and the difference. Each method's own folder keeps its
erase outputs, metrics.json and report.html.

What the experiment runs on is a :class:`World`: the official checkpoints
(:func:`checkpoint_world`), or for ``--demo`` the toy world of :mod:`guide.toy`
(:func:`demo_world`, the one place the demo's models are made).
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from guide.errors import GuideError

TABLE = "table.md"
REPORT = "report.html"
REFERENCE_FILES = ("ffhqrebalanced512-128.pkl", "w_avg_ffhqrebalanced512-128.pt", "encoder_FFHQ.pt",
                   "vgg16-397923af.pth", "model_ir_se50.pth", "CurricularFace_Backbone.pth",
                   "pt_inception-2015-12-05-6726825d.pth", "ffhq_real_feat.npy")
SHOWN = (("ID", "{:.4f}"), ("ID_others", "{:.4f}"), ("FID_pre", "{:.4g}"), ("delta_FID_real", "{:.4g}"))


@dataclass
class OODSettings:
    """The experiment's settings; defaults are the reference's."""

    photo_dir: Path
    out_dir: Path
    target_index: int = 0
    methods: Sequence[str] = ("baseline", "guide")
    iters: Optional[int] = None  # None: the paper's 1000
    fid_samples: int = 5000
    fid_batch: int = 8
    views: int = 11
    seed: int = 0
    inversion: str = "stochastic"  # the reference never puts GOAE in eval mode
    renders: str = "random"  # the reference renders before/after with random noise
    real: Optional[Path] = None  # default: <checkpoints>/ffhq_real_feat.npy
    overwrite: bool = False
    resume: bool = False


@dataclass
class World:
    """What the experiment runs on: source generator (saved as a file, so the evaluation can
    check it), loss and evaluation networks, the photo models, where the mean latent comes from."""

    generator: torch.nn.Module
    generator_path: Path
    networks: Any  # guide.erase.Networks
    eval_networks: Any  # guide.evaluate.pipeline.EvalNetworks
    checkpoint_dir: Optional[Path]
    device: torch.device
    photo_models: Any = None  # guide.inversion.PhotoModels (None: from the checkpoints)
    w_avg: str = "file"
    cache_dir: Optional[Path] = None  # None: the default FID feature cache
    real: Optional[Path] = None
    description: str = ""
    demo: bool = False


# ------------------------------------------------------------------------------ worlds


def checkpoint_world(checkpoint_dir: Path, device: torch.device, real: Optional[Path] = None) -> World:
    """The official checkpoints (every file of :data:`REFERENCE_FILES` checked before any loading)."""
    from guide.checkpoints import require_checkpoint
    from guide.erase import load_networks
    from guide.evaluate.pipeline import EvalNetworks
    from guide.io import load_any_generator

    for name in REFERENCE_FILES:
        if name == "ffhq_real_feat.npy" and real is not None:
            if not Path(real).is_file():
                raise GuideError(f"real statistics file not found: {real}")
            continue
        require_checkpoint(name, checkpoint_dir)
    generator_path = Path(checkpoint_dir) / REFERENCE_FILES[0]
    return World(generator=load_any_generator(generator_path, device=device), generator_path=generator_path,
                  networks=load_networks(checkpoint_dir, device),
                  eval_networks=EvalNetworks(checkpoint_dir, device),
                  checkpoint_dir=Path(checkpoint_dir), device=device,
                  real=Path(real) if real is not None else Path(checkpoint_dir) / "ffhq_real_feat.npy",
                  description=f"EG3D ffhqrebalanced512-128 and networks from {checkpoint_dir}")


DEMO_PHOTOS = 5  # as many as the reference's sample folder


def demo_world(folder: Path, device: torch.device) -> World:
    """The demo's models: the toy world (guide.toy: a small trained generator of procedural heads,
    the toy ArcFace in the identity loss, random-AlexNet LPIPS, the toy CurricularFace for ID and as
    the FID features), a tiny GOAE with RANDOM weights (so the "inverted" latents are the mean
    latent plus random offsets), five "photos" (renders of toy heads, already aligned) and stand-in
    real statistics (toy features of other renders). Writes into `folder`; the numbers describe
    the toy world only."""
    import goae
    import numpy as np

    from guide.config import CameraConfig
    from guide.inversion import PhotoModels
    from guide.io.atomic import write_bytes_atomic
    from guide.render import camera_for, png_bytes, to_uint8
    from guide.toy.world import toy_world

    folder.mkdir(parents=True, exist_ok=True)
    toy = toy_world(device)
    G = toy.G
    rows = G.num_ws - 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        swin = goae.SwinV2Config(img_size=32, patch_size=2, embed_dim=8, depths=(2, 2, 1, 1), num_heads=(1, 2, 2, 4),
                                 window_size=4, pretrained_window_sizes=(3, 3, 3, 2))
        encoder = goae.GOAEncoder(goae.GOAEConfig(swin=swin, w_dim=G.w_dim, cross_attn_heads=2,
                                                  cross_attn_ffn_dim=32, stochastic=True,
                                                  delta_rows=(rows // 3, rows // 3, rows - 2 * (rows // 3)))).eval()
    eval_networks = toy.eval_networks(device)
    camera = CameraConfig()

    def renders(first_seed: int, count: int) -> torch.Tensor:
        z = torch.randn(count, G.z_dim, generator=torch.Generator().manual_seed(first_seed)).to(device)
        with torch.no_grad():
            ws = G.mapping(z, camera_for(camera, 0.0, 0.0, device).repeat(count, 1))
            return G.synthesis(ws, camera_for(camera, device=device).repeat(count, 1), noise_mode="const",
                               deterministic=True)["image"]

    photos = folder / "photos"
    photos.mkdir(exist_ok=True)
    for i, image in enumerate(to_uint8(renders(100, DEMO_PHOTOS))):
        write_bytes_atomic(photos / f"aligned_{i + 1}.png", png_bytes(image))
    real = folder / "real_feat.npy"
    np.save(real, eval_networks.features()(renders(200, 16)).cpu().numpy().astype(np.float32))
    return World(generator=G, generator_path=toy.generator_path, networks=toy.networks, eval_networks=eval_networks,
                 checkpoint_dir=None, device=device, photo_models=PhotoModels(encoder=encoder), w_avg="mapping",
                 cache_dir=folder / "fid-cache", real=real, demo=True,
                 description="DEMO: the toy world (guide.toy: small trained generator of procedural heads and toy "
                             "identity networks) with a tiny RANDOM GOAE; the photos are toy renders")


# ---------------------------------------------------------------------------- experiment


def _config(method: str, settings: OODSettings, world: World):
    from guide.config import method_preset

    config = method_preset(method)
    config.seed = settings.seed
    if settings.iters is not None:
        config.ltu.iters = settings.iters
    config.inversion.aligned = True
    config.inversion.mode = settings.inversion
    config.inversion.w_avg = world.w_avg
    config.renders = settings.renders
    if world.demo:
        from guide.toy.world import apply_toy_preset

        apply_toy_preset(config)
    return config


def check_out_dir(settings: OODSettings) -> None:
    """DIR may be new or empty; an earlier reproduction needs --overwrite or --resume."""
    out = Path(settings.out_dir)
    if out.exists() and not out.is_dir():
        raise GuideError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (settings.overwrite or settings.resume):
        raise GuideError(f"output folder {out} is not empty (use --overwrite to replace it, or --resume to "
                         "continue an interrupted reproduction)")


def run_ood(settings: OODSettings, world: World, *, progress: bool = True,
            log: Callable[[str], None] = print) -> Dict[str, Dict[str, Any]]:
    """Erase and evaluate with every method; write DIR/table.md and DIR/report.html. Returns
    {method: metrics}."""
    from guide.erase import Identity, run_erase
    from guide.evaluate.cache import FeatureCache, resolve_cache_dir
    from guide.evaluate.identity import Others
    from guide.evaluate.pipeline import eval_all

    out = Path(settings.out_dir)
    identity = Identity("folder", str(settings.photo_dir), settings.target_index)
    cache = FeatureCache(world.cache_dir if world.cache_dir is not None else resolve_cache_dir(None))
    results: Dict[str, Dict[str, Any]] = {}
    for method in settings.methods:
        folder = out / method
        config = _config(method, settings, world)
        log(f"[{method}] erasing photo {settings.target_index} of {settings.photo_dir} ({config.ltu.iters} steps)")
        run_erase(identity, folder, world.generator, config, world.networks, checkpoint_dir=world.checkpoint_dir,
                  generator_path=world.generator_path, device=world.device, overwrite=settings.overwrite,
                  resume=settings.resume, progress=progress, log=log, views=settings.views, metrics_note=False,
                  photo_models=world.photo_models)
        log(f"[{method}] evaluating (ID, ID_others, FID_pre and ΔFID_real from {settings.fid_samples} samples)")
        metrics, _ = eval_all(folder, world.eval_networks, real=world.real, others=Others("auto"),
                              num=settings.fid_samples, seed=0, batch=settings.fid_batch, cache=cache,
                              progress=progress, sampling="paper")
        results[method] = metrics
    write_outputs(settings, world, results)
    return results


# ------------------------------------------------------------------------------- outputs


def _fmt(value: Optional[float], pattern: str, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return (pattern.replace("{:", "{:+") if signed else pattern).format(value)


def table_rows(results: Dict[str, Dict[str, Any]]) -> List[List[str]]:
    """One row per method: method, then (ours, published, difference) per metric."""
    rows = []
    for method, metrics in results.items():
        published = metrics.get("published") or {}
        values, diffs = published.get("values") or {}, published.get("difference") or {}
        row = [method]
        for key, pattern in SHOWN:
            row += [_fmt(metrics.get(key), pattern), _fmt(values.get(key), pattern),
                    _fmt(diffs.get(key), pattern, signed=True)]
        rows.append(row)
    return rows


def _header() -> List[str]:
    names = {"ID": "ID", "ID_others": "ID_others", "FID_pre": "FID_pre", "delta_FID_real": "ΔFID_real"}
    head = ["method"]
    for key, _ in SHOWN:
        head += [f"{names[key]} ours", f"{names[key]} published", f"{names[key]} difference"]
    return head


def _caveats(settings: OODSettings, world: World, results: Dict[str, Dict[str, Any]]) -> List[str]:
    out = []
    if world.demo:
        out.append("DEMO run: the toy world (a small generator of procedural heads, toy identity networks, toy "
                   "FID features) with a RANDOM-weight GOAE -- the numbers describe the toy world and the pipeline; "
                   "they are not comparable with the published ones.")
    if settings.fid_samples < 5000:
        out.append(f"FID from {settings.fid_samples} samples per generator (the reference: 5000); FID is biased "
                   "upwards for small N.")
    if settings.iters is not None and settings.iters != 1000:
        out.append(f"{settings.iters} training steps (the reference: 1000).")
    if settings.views != 11:
        out.append(f"{settings.views} views per identity (the reference: 11).")
    missed = sum((m.get("identity") or {}).get("images_without_detected_face") or 0 for m in results.values())
    if missed and not world.demo:  # the toy world's scorer always crops at fixed landmarks
        out.append(f"{missed} render(s) without a detected face (aligned from fixed landmarks; the reference "
                   "crashes on those).")
    out.append("The published values are one run each (one stochastic inversion, one training run, random FID "
               "noise); a re-run differs by that spread as well.")
    return out


def table_markdown(settings: OODSettings, world: World, results: Dict[str, Dict[str, Any]]) -> str:
    """DIR/table.md."""
    from guide.evaluate.reference import SOURCE

    head = _header()
    lines = ["# Reproduction of the reference's OOD experiment", "",
             f"Photos: `{settings.photo_dir}`, erased photo {settings.target_index}; {world.description}.", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    lines += ["", f"Published: {SOURCE}.", ""]
    lines += [f"- {c}" for c in _caveats(settings, world, results)]
    return "\n".join(lines) + "\n"


def report_html(settings: OODSettings, world: World, results: Dict[str, Dict[str, Any]]) -> str:
    """DIR/report.html: the table, the caveats and each method's before/after grid (self-contained)."""
    from guide.evaluate.reference import SOURCE
    from guide.evaluate.report import CSS, png_data_uri

    head = "".join(f"<th>{html.escape(h)}</th>" for h in _header())
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table_rows(results))
    caveats = "".join(f"<div class=warn>{html.escape(c)}</div>" for c in _caveats(settings, world, results))
    figures = ""
    for method in results:
        grid = Path(settings.out_dir) / method / "grid.png"
        if grid.is_file():
            figures += (f"<figure><img src='{png_data_uri(grid)}' alt='{html.escape(method)}'><figcaption>"
                        f"{html.escape(method)}: before / after / target of the erased photo "
                        f"(<a href='{html.escape(method)}/report.html'>full report</a>)</figcaption></figure>")
    settings_json = json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in vars(settings).items()},
                               indent=2, default=str)
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>GUIDE reproduction: OOD</title>"
            f"<style>{CSS}</style></head><body><h1>Reproduction of the reference's OOD experiment</h1>"
            f"<p>{html.escape(world.description)}; photos {html.escape(str(settings.photo_dir))}, erased photo "
            f"{settings.target_index}.</p>{caveats}<h2>Ours beside the published values</h2>"
            f"<table><tr>{head}</tr>{body}</table><p class=muted>Published: {html.escape(SOURCE)}.</p>"
            f"<h2>Renders</h2>{figures}<h2>Settings</h2><pre>{html.escape(settings_json)}</pre></body></html>\n")


def write_outputs(settings: OODSettings, world: World, results: Dict[str, Dict[str, Any]]) -> None:
    """DIR/table.md and DIR/report.html (atomically)."""
    from guide.io.atomic import write_text_atomic

    out = Path(settings.out_dir)
    write_text_atomic(out / TABLE, table_markdown(settings, world, results))
    write_text_atomic(out / REPORT, report_html(settings, world, results))


__all__ = ["OODSettings", "REFERENCE_FILES", "World", "checkpoint_world", "demo_world", "run_ood", "table_markdown"]
