"""Train every shipped toy-world weight file from one seed: ``python -m guide.toy.train --seed 0``.

1. The generator (:func:`guide.toy.generator.toy_generator_kwargs`) by regression: L1 between its
   128² image and the scene's render, plus L1 between its raw render and the scene at the neural
   rendering resolution, for fresh (z, camera) pairs every step (yaw within ±pi/8, pitch offset
   -0.35..0.1, pivot z 0..0.2); pixels on and around the eyes, nose and mouth weigh 1 +
   ``--gen-feature-weight`` (8), so the small features that tell heads apart are learnt, not
   averaged away. One-cycle Adam up to lr 2e-2, 7000 steps of 4 heads. Fit: PSNR on held-out z and
   cameras. Afterwards w_avg is set to the
   mean mapped latent of 10,000 z, and the W space is rescaled (renders unchanged,
   :func:`guide.toy.generator.scale_w_space`) so the median ||w - w_avg|| over W+ is 60.
2. Two identity networks (:class:`guide.toy.nets.ToyFaceNet`): "arcface" (width 16, seed+1) on the
   identity loss's crops and "curricularface" (width 24, seed+2) on the ID metric's aligned crops,
   each with a contrastive (InfoNCE) objective: any two of a head's views are positives, the other
   heads of the batch negatives. A head's views are scene renders *and* the trained generator's
   renders of the same z from the same cameras, so the networks judge identity by what the
   generator actually draws and call its render the same person as the procedural head it
   imitates. Fit: verification accuracy on held-out heads (threshold chosen on the training
   heads), scene vs scene, generator vs generator and generator vs scene.

Writes ``generator.safetensors`` + ``generator.json`` (our generator format), ``arcface.safetensors``,
``curricularface.safetensors`` and ``manifest.json`` (sha256 of each file, settings, fit, torch
version, wall time) into ``--out`` (default: the package's ``guide/toy/weights``).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from guide.toy.generator import NEURAL_RENDERING_RESOLUTION, W_PLUS_SPREAD, scale_w_space, toy_generator_kwargs
from guide.toy.nets import ToyFaceNet
from guide.toy.scene import identity_of, render_heads
from guide.toy.world import MANIFEST, NET_WIDTHS, WEIGHTS_DIR

YAW_RANGE = math.pi / 8
PITCH_RANGE = (-0.35, 0.1)
PIVOT_Z = (0.0, 0.2)
Z_DIM = 16
ID_VIEWS = 3  # scene views per head for the identity networks (and as many generator renders)


def random_cameras(n: int, g: torch.Generator) -> torch.Tensor:
    """``[n,25]`` training cameras: yaw within ±pi/8, pitch offset -0.35..0.1, pivot z 0..0.2."""
    from guide.cameras import pose_params

    u = torch.rand(n, 3, generator=g, dtype=torch.float64)
    rows = [pose_params(float((2 * a - 1) * YAW_RANGE), float(PITCH_RANGE[0] + (PITCH_RANGE[1] - PITCH_RANGE[0]) * b),
                        pivot=(0.0, 0.0, float(PIVOT_Z[0] + (PIVOT_Z[1] - PIVOT_Z[0]) * c))) for a, b, c in u.tolist()]
    return torch.cat(rows)


# ------------------------------------------------------------------------------ identity nets


def arcface_crops(images: torch.Tensor) -> torch.Tensor:
    """What :class:`guide.identity.IDLoss` feeds its backbone (64² crops)."""
    from guide.identity.idloss import idloss_preprocess

    return idloss_preprocess(images, 64)


def metric_crops(images: torch.Tensor) -> torch.Tensor:
    """What the toy ID metric feeds its backbone: fixed-landmark aligned 112² crops in [-1,1]."""
    from guide.identity.similarity import crops_to_tensor
    from guide.toy.world import toy_identity_scorer

    scorer = toy_identity_scorer(torch.nn.Identity())
    uint8 = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return crops_to_tensor(np.stack([scorer.crop(im)[0] for im in uint8]))


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Blur (down/up-sampling to a random size), brightness and noise: the generator's renders are
    softer and noisier than the scene's."""
    n, size = x.shape[0], x.shape[-1]
    out = []
    for i in range(0, n, 8):  # one blur size per group of 8 images
        s = int(size * (0.4 + 0.6 * torch.rand((), generator=g).item()))
        out.append(F.interpolate(F.interpolate(x[i:i + 8], size=(s, s), mode="bilinear", antialias=True),
                                 size=(size, size), mode="bilinear"))
    x = torch.cat(out)
    x = x * (1 + 0.1 * (torch.rand(n, 1, 1, 1, generator=g) - 0.5)) + 0.1 * (torch.rand(n, 1, 1, 1, generator=g) - 0.5)
    return (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def head_views(num_ids: int, num_views: int, g: torch.Generator, G=None) -> torch.Tensor:
    """Renders ``[num_ids, V, 3, 128, 128]`` of random heads from random cameras: ``num_views``
    scene renders, followed (when a generator ``G`` is given) by ``G``'s renders of the same
    z from the same cameras, so V is ``num_views`` or twice that."""
    from guide.cameras import conditioning_params

    z = torch.randn(num_ids, Z_DIM, generator=g)
    p = identity_of(z)
    scene, generated = [], []
    for v in range(num_views):
        chunks, gen_chunks = [], []
        for i in range(0, num_ids, 64):
            cams = random_cameras(min(64, num_ids - i), g)
            chunks.append(render_heads(p[i:i + 64], cams, 128, supersample=1))
            if G is not None:
                with torch.no_grad():
                    ws = G.mapping(z[i:i + 64], conditioning_params().expand(len(cams), -1))
                    gen_chunks.append(G.synthesis(ws, cams, noise_mode="const")["image"].clamp(-1, 1))
        scene.append(torch.cat(chunks))
        if G is not None:
            generated.append(torch.cat(gen_chunks))
    return torch.stack(scene + generated, 1)


def crop_views(views: torch.Tensor, crop: Callable) -> torch.Tensor:
    """Apply a crop function to every view of ``[K,V,3,H,W]``."""
    k, v = views.shape[:2]
    return crop(views.flatten(0, 1)).unflatten(0, (k, v))


def verification(net: ToyFaceNet, train: torch.Tensor, held: torch.Tensor, views: Tuple[int, int] = (0, 1)) -> Dict[str, float]:
    """Same/different-head verification between views ``views`` of ``[K,V,...]`` data: threshold at
    the best accuracy on ``train``, accuracy and mean cosines on ``held``."""
    def sims(data: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            e0, e1 = net(data[:, views[0]]), net(data[:, views[1]])
        return (e0 * e1).sum(-1), (e0 * e1.roll(1, 0)).sum(-1)

    s, d = sims(train)
    grid = torch.linspace(-1, 1, 401)
    acc = torch.stack([((s > t).float().mean() + (d <= t).float().mean()) / 2 for t in grid])
    threshold = float(grid[acc.argmax()])
    s, d = sims(held)
    return {"threshold": threshold, "heldout_accuracy": float(((s > threshold).float().mean() + (d <= threshold).float().mean()) / 2),
            "heldout_same_cosine": float(s.mean()), "heldout_different_cosine": float(d.mean())}


def train_identity_net(name: str, data: torch.Tensor, held: torch.Tensor, seed: int, steps: int, log,
                       scene_views: Optional[int] = None) -> Tuple[ToyFaceNet, dict]:
    """InfoNCE on pairs of views of ``data`` ``[K,V,3,S,S]`` (any two views of a head are a positive
    pair, whether scene or generator renders); returns the net (eval) and its fit. With
    ``scene_views`` set, views from that index on are the generator's renders (of ``data`` and of
    ``held``, same layout) and the fit is reported for both kinds and across them."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = ToyFaceNet(width=NET_WIDTHS[name], input_size=64)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    k, v = data.shape[:2]
    batch = min(64, k)
    for step in range(steps):
        ids = torch.randperm(k, generator=g)[:batch]
        pick = torch.stack([torch.randperm(v, generator=g)[:2] for _ in range(batch)])
        a = _augment(data[ids, pick[:, 0]], g)
        b = _augment(data[ids, pick[:, 1]], g)
        e = net(torch.cat([a, b]))
        logits = e[:batch] @ e[batch:].t() / 0.1
        labels = torch.arange(batch)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"{name} step {step}/{steps} loss {loss.item():.3f}")
    net.eval()
    fit = {"scene": verification(net, data, held, (0, 1))}
    if scene_views is not None:  # generator renders follow the scene's views
        fit["generator"] = verification(net, data, held, (scene_views, scene_views + 1))
        fit["generator_vs_scene"] = verification(net, data, held, (0, scene_views))
    log(f"{name}: {fit}")
    return net, fit


# ------------------------------------------------------------------------------ generator


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1,1] (peak-to-peak 2)."""
    mse = (a - b).square().mean().item()
    return float(10 * math.log10(4 / mse))


def generator_batch(n: int, g: torch.Generator, res: int, feature_weight: float = 0.0):
    """Fresh z, cameras, the scene's renders at 128² and at ``res``², and per-pixel loss weights
    at both sizes: 1, plus ``feature_weight`` on and around (5×5 at 128²) the eyes, nose and mouth."""
    z = torch.randn(n, Z_DIM, generator=g)
    cams = random_cameras(n, g)
    target, mask = render_heads(identity_of(z), cams, 128, supersample=1, feature_mask=True)
    weight = 1 + feature_weight * F.max_pool2d(mask, 5, 1, 2)
    return z, cams, target, F.avg_pool2d(target, 128 // res), weight, F.avg_pool2d(weight, 128 // res)


def train_generator(seed: int, steps: int, batch: int, log, lr: float = 2e-2, feature_weight: float = 0.0):
    """Regression of the toy generator onto the scene (weighted L1, see :func:`generator_batch`;
    one-cycle Adam up to ``lr``: the equalised learning rate of EG3D's layers makes the usual 2e-3
    far too slow for a few thousand steps); returns (G eval, fit)."""
    from eg3d import TriPlaneGenerator
    from guide.cameras import conditioning_params

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    G = TriPlaneGenerator(**toy_generator_kwargs())
    G.neural_rendering_resolution = NEURAL_RENDERING_RESOLUTION
    res = NEURAL_RENDERING_RESOLUTION
    opt = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    c0 = conditioning_params()
    G.train()
    start = time.time()
    for step in range(steps):
        z, cams, target, target_raw, weight, weight_raw = generator_batch(batch, g, res, feature_weight)
        ws = G.mapping(z, c0.expand(batch, -1))
        out = G.synthesis(ws, cams, noise_mode="random")
        loss = ((out["image"] - target).abs() * weight).mean() + 0.5 * ((out["image_raw"] - target_raw).abs() * weight_raw).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 25 == 0 or step == steps - 1:
            log(f"generator step {step}/{steps} loss {loss.item():.4f} ({time.time() - start:.0f} s)")
    G.eval().requires_grad_(False)
    with torch.no_grad():
        zs = torch.randn(10000, Z_DIM, generator=g)
        w = G.mapping(zs, c0.expand(10000, -1))[:, 0]
        G.backbone.mapping.w_avg.copy_(w.mean(0))
        dist = (w - w.mean(0)).norm(dim=1)
        trained = float(dist.median() * math.sqrt(G.num_ws))  # over the whole W+ tensor (UFO's norm)
        factor = W_PLUS_SPREAD / trained
        scale_w_space(G, factor)
        fit = {"w_minus_w_avg_median_wplus_trained": trained, "w_scale_factor": factor,
               "w_minus_w_avg_median": float(dist.median()) * factor, "w_minus_w_avg_median_wplus": trained * factor}
        held = torch.Generator().manual_seed(seed + 1000)
        pairs = [generator_batch(16, held, res) for _ in range(2)]
        images, raws, targets, target_raws = [], [], [], []
        for z, cams, target, target_raw, _, _ in pairs:
            out = G.synthesis(G.mapping(z, c0.expand(16, -1)), cams, noise_mode="const")
            images.append(out["image"]), raws.append(out["image_raw"]), targets.append(target), target_raws.append(target_raw)
        fit["heldout_psnr_image"] = psnr(torch.cat(images), torch.cat(targets))
        fit["heldout_psnr_raw"] = psnr(torch.cat(raws), torch.cat(target_raws))
    log(f"generator: {fit}")
    return G, fit


# ------------------------------------------------------------------------------ main


def save_net(net: ToyFaceNet, path: Path) -> None:
    """A state_dict as safetensors, written atomically."""
    from safetensors.torch import save_file

    from guide.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(tmp),
                  metadata={"width": str(net.width), "input_size": str(net.input_size)})


def main(argv: List[str] = None) -> dict:
    """Train everything, write the weights and the manifest; returns the manifest."""
    parser = argparse.ArgumentParser(prog="python -m guide.toy.train", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--gen-steps", type=int, default=7000)
    parser.add_argument("--gen-batch", type=int, default=4)
    parser.add_argument("--gen-lr", type=float, default=2e-2)
    parser.add_argument("--gen-feature-weight", type=float, default=8.0)
    parser.add_argument("--id-steps", type=int, default=300)
    parser.add_argument("--id-heads", type=int, default=600)
    parser.add_argument("--held-heads", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:7.1f} s] {msg}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    fit: Dict[str, dict] = {}
    G, fit["generator"] = train_generator(args.seed, args.gen_steps, args.gen_batch, log, args.gen_lr,
                                          args.gen_feature_weight)
    views = head_views(args.id_heads, ID_VIEWS, torch.Generator().manual_seed(args.seed * 100), G)
    held_views = head_views(args.held_heads, ID_VIEWS, torch.Generator().manual_seed(args.seed * 100 + 50), G)
    log(f"rendered {tuple(views.shape)} training and {tuple(held_views.shape)} held-out views (scene + generator)")
    for name, crop, offset in (("arcface", arcface_crops, 1), ("curricularface", metric_crops, 2)):
        data, held = crop_views(views, crop), crop_views(held_views, crop)
        net, fit[name] = train_identity_net(name, data, held, args.seed * 100 + offset, args.id_steps, log,
                                            scene_views=ID_VIEWS)
        save_net(net, args.out / f"{name}.safetensors")
    from guide.io.generator_io import save_generator

    save_generator(G, args.out / "generator", provenance={
        "method": "toy-world regression (guide.toy.train)", "source_checkpoint": None, "source_sha256": None,
        "hyperparameters": {"seed": args.seed, "steps": args.gen_steps, "batch": args.gen_batch}})
    from guide.io.hashing import sha256_file

    files = ["generator.safetensors", "generator.json", "arcface.safetensors", "curricularface.safetensors"]
    manifest = {
        "seed": args.seed,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "fit": fit,
        "files": {f: {"sha256": sha256_file(args.out / f), "bytes": (args.out / f).stat().st_size} for f in files},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "wall_seconds": round(time.time() - t0, 1),
    }
    (args.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"wrote {args.out} in {manifest['wall_seconds']} s")
    return manifest


if __name__ == "__main__":
    main()
