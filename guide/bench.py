"""`guide bench`: speed and memory of the generator, the LTU training step and the ops.

Measures, on CPU or CUDA, with random weights (no checkpoint needed):
  * generator forward (no grad) at the chosen size;
  * the LTU step: `guide.trainer.LTUTrainer` at the paper's settings (1 local + 2 adjacency +
    2 global-preservation latents; tri-plane MSE, LPIPS-VGG and the IR-SE50 identity loss;
    backward into backbone.synthesis; one Adam update), mean over consecutive steps as the
    erase loop runs them: the plain path reads each step's loss terms (`step()`), the fused-Adam
    and CUDA-graph paths read them once at the end (`step_on_device()`);
  * optionally the same step organised as the reference code does it (the speed-up ratio ×ref
    is printed beside every LTU figure);
  * the erase loop: guide.erase.train_ltu itself (loss log, reads, checkpoints), per step of a
    1000-step erase with a checkpoint every 100 steps;
  * each op (bias_act, upfirdn2d) — its CUDA kernel against the PyTorch reference;
  * optionally (`audit`) the parts of one `guide audit` and the whole audit's estimated time.
Options: precision (fp32 / tf32 / bf16 autocast), SR in fp16 or fp32, fused Adam, CUDA graph,
torch.compile, channels_last (guide.acceleration). Peak memory is printed beside every figure.
"""
from __future__ import annotations

import json
import platform
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

import eg3d
from eg3d import configs
from eg3d.camera import FOV_to_intrinsics, LookAtPoseSampler, camera_params
from guide.acceleration import compile_generator, to_channels_last


@dataclass
class BenchSettings:
    """What to measure and how."""

    device: str = "cpu"
    config: str = "full"  # 'full' = ffhqrebalanced512-128, 'tiny' = configs.tiny()
    batch: int = 1  # generator forward batch
    steps: int = 5  # timed repetitions
    warmup: int = 2
    precision: str = "fp32"  # fp32 | tf32 | bf16 (autocast)
    sr_fp16: bool = True  # on CUDA, run the SR blocks in fp16 as upstream (False: force fp32)
    compile: bool = False  # torch.compile synthesis / renderer / SR (guide.acceleration)
    channels_last: bool = False  # NHWC weights and features: generator, LPIPS, IR-SE50
    fused_adam: bool = False  # LTUConfig.fused_adam: no host read per step
    cuda_graph: bool = False  # LTUConfig.cuda_graph (CUDA)
    neural_rendering_resolution: Optional[int] = None  # default: 128 full, 32 tiny
    sections: tuple = ("forward", "ltu_step", "erase_loop", "ops")  # also: "ltu_step_reference_style"
    seed: int = 0


@dataclass
class BenchResult:
    name: str
    ms: float
    per_s: float
    peak_mem_mb: float
    extra: dict = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def time_loop(fn: Callable[[], object], device: torch.device, steps: int, warmup: int,
              finish: Callable[[], object] = lambda: None) -> tuple[float, float]:
    """Mean milliseconds per call of fn over `steps` consecutive calls (then `finish()`, and one
    wait for the device at the end: work may overlap between calls, as in a training loop), and
    peak memory in MiB."""
    for _ in range(warmup):
        fn()
    finish()
    _sync(device)
    _reset_peak(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    finish()
    _sync(device)
    return (time.perf_counter() - start) * 1000 / steps, _peak_mb(device)


def time_it(fn: Callable[[], object], device: torch.device, steps: int, warmup: int) -> tuple[float, float]:
    """Median milliseconds per call of fn, and peak memory in MiB."""
    for _ in range(warmup):
        fn()
    _sync(device)
    _reset_peak(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[len(times) // 2], _peak_mb(device)


def _build(settings: BenchSettings, device: torch.device) -> eg3d.TriPlaneGenerator:
    kwargs = configs.ffhq_rebalanced_512_128() if settings.config == "full" else configs.tiny()
    torch.manual_seed(settings.seed)
    G = eg3d.TriPlaneGenerator(**kwargs).to(device).eval().requires_grad_(False)
    nrr = settings.neural_rendering_resolution
    G.neural_rendering_resolution = nrr or (configs.FFHQ_NEURAL_RENDERING_RESOLUTION if settings.config == "full"
                                            else 32)
    return G


def _cameras(n: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    yaw = (torch.rand(1, generator=generator).item() * 2 - 1) * 3.14159 / 12
    cam = LookAtPoseSampler.sample(3.14159 / 2 + yaw, 3.14159 / 2 - 0.2, [0, 0, 0], radius=2.7, generator=generator)
    return camera_params(cam, FOV_to_intrinsics(18.837)).repeat(n, 1).to(device)


def _autocast(settings: BenchSettings, device: torch.device):
    if settings.precision == "bf16":  # no cast cache: a CUDA graph must not capture cached casts
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
    return torch.autocast(device_type=device.type, enabled=False)


def bench_forward(settings: BenchSettings, device: torch.device) -> BenchResult:
    G = _build(settings, device)
    rng = torch.Generator().manual_seed(settings.seed)
    c = _cameras(settings.batch, device, rng)
    ws = G.mapping(torch.randn(settings.batch, G.z_dim, generator=rng).to(device), c)
    if settings.channels_last:
        to_channels_last(G)
    if settings.compile:
        compile_generator(G)

    def step():
        with torch.no_grad(), _autocast(settings, device):
            return G.synthesis(ws, c, noise_mode="const", force_fp32=not settings.sr_fp16)

    ms, peak = time_it(step, device, settings.steps, settings.warmup)
    return BenchResult("generator_forward", ms, 1000 / ms * settings.batch, peak,
                       {"batch": settings.batch, "unit": "images/s"})


def _ltu_trainer(settings: BenchSettings, device: torch.device):
    """An LTUTrainer at the paper's settings with random weights (LPIPS-VGG and ArcFace IR-SE50
    too: same cost as the real ones), and its loss networks."""
    from guide.config import LTUConfig
    from guide.identity import IDLoss, ir_se50
    from guide.perceptual import lpips_vgg
    from guide.trainer import LTUTrainer
    from guide.ufo import extrapolated_target

    G_src = _build(settings, device)
    torch.manual_seed(settings.seed)
    lp = lpips_vgg(random_backbone=True, device=device)
    id_loss = IDLoss(ir_se50(device=device))
    rng = torch.Generator().manual_seed(settings.seed)
    c0 = _cameras(1, device, rng)
    w_u = G_src.mapping(torch.randn(1, G_src.z_dim, generator=rng).to(device), c0).detach()
    w_avg = G_src.backbone.mapping.w_avg.reshape(1, 1, -1).to(device)
    w_t = extrapolated_target(w_u, w_avg, 30.0)
    config = LTUConfig(sr_fp32=not settings.sr_fp16, compile=settings.compile, channels_last=settings.channels_last,
                       fused_adam=settings.fused_adam, cuda_graph=settings.cuda_graph)
    trainer = LTUTrainer(G_src, w_u, w_t, config, lpips=lp, id_loss=id_loss, seed=settings.seed)
    return trainer, lp, id_loss


def _warmup(settings: BenchSettings) -> int:
    """Warm-up steps: at least those before a CUDA graph is captured, plus the capture itself,
    so that the timed steps are replays."""
    from guide.trainer import GRAPH_WARMUP_STEPS

    return max(settings.warmup, GRAPH_WARMUP_STEPS + 1) if settings.cuda_graph else settings.warmup


def _reads_every_step(settings: BenchSettings) -> bool:
    """The plain path reads each step's terms (one host wait per step); the others read at the end."""
    return not (settings.fused_adam or settings.cuda_graph)


def bench_ltu_step(settings: BenchSettings, device: torch.device, reference_style: bool = False) -> BenchResult:
    """The LTU step at the paper's settings: ours is `guide.trainer.LTUTrainer` itself.
    `reference_style` emulates how GUIDE's unlearn.py organises the same step (one latent at a
    time, the backbone run twice per latent: get_planes, then synthesis) so the speed-up can be
    measured on the same machine."""
    trainer, lp, id_loss = _ltu_trainer(settings, device)
    rng = torch.Generator().manual_seed(settings.seed)
    losses = trainer.config.losses
    n = 1 + losses.adj_batch + losses.global_batch
    pending, losses = [], []  # losses of every step (warm-up included): variants compare them

    def step():
        with _autocast(settings, device):
            if reference_style:
                return reference_style_step()
            if _reads_every_step(settings):
                return losses.append(trainer.step()["loss"])
            pending.append(trainer.step_on_device())

    def read():
        losses.extend(values["loss"] for values in trainer.read(pending))
        pending.clear()

    def reference_style_step():
        inputs = trainer.sample_inputs()
        with torch.no_grad():
            ws_train, ws_src, n_local, n_adj = trainer.latents(inputs)
        c = _cameras(1, device, rng)
        G, G_ref = trainer.G, trainer.G_src
        fp32 = not settings.sr_fp16
        loss = 0
        for i in range(len(ws_train)):
            wi, wt = ws_train[i:i + 1], ws_src[i:i + 1]
            if i < n_local + n_adj:
                loss = loss + 1e-2 * torch.nn.functional.mse_loss(G.get_planes(wi), G_ref.get_planes(wt))
            img = G.synthesis(wi, c, force_fp32=fp32)["image"]
            img_t = G_ref.synthesis(wt, c, force_fp32=fp32)["image"]
            loss = loss + lp(img.float(), img_t.float()).mean()
            if i < n_local + n_adj:
                loss = loss + 0.1 * id_loss(img.float(), img_t.float())
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        return float(loss.detach())

    warmup = settings.warmup if reference_style else _warmup(settings)
    ms, peak = time_loop(step, device, settings.steps, warmup, finish=read)
    name = "ltu_step_reference_style" if reference_style else "ltu_step"
    extra = {"batch_trainable": n, "batch_frozen": n, "unit": "steps/s", "seconds_per_1000_steps": ms}
    if not reference_style:
        extra["reads"] = "every step" if _reads_every_step(settings) else "once at the end"
        extra["loss_per_step"] = losses
    return BenchResult(name, ms, 1000 / ms, peak, extra)


def bench_erase_loop(settings: BenchSettings, device: torch.device) -> BenchResult:
    """`guide.erase.train_ltu` — the loop of an erase: the steps plus what it does between them
    (reading the terms, the loss log, the progress callback, checkpoints). Reported per step of a
    1000-step erase with its 11 checkpoints (every 100 steps, and the final one): the loop's time
    per step without checkpoints plus 11/1000 of one checkpoint's time."""
    import tempfile
    from pathlib import Path

    from guide.erase import save_training_state, train_ltu

    trainer, _, _ = _ltu_trainer(settings, device)
    quiet = dict(checkpoint_every=0, progress=False, log=lambda message: None)
    with tempfile.TemporaryDirectory() as tmp, _autocast(settings, device):
        out = Path(tmp)
        trainer.config.iters = _warmup(settings)
        train_ltu(trainer, out, **quiet)  # warm-up (and the CUDA graph's capture); ends with a checkpoint
        _sync(device)
        _reset_peak(device)
        start = time.perf_counter()
        save_training_state(trainer, out, [])
        _sync(device)
        checkpoint_ms = (time.perf_counter() - start) * 1000
        trainer.config.iters = _warmup(settings) + settings.steps
        start = time.perf_counter()
        history = train_ltu(trainer, out, **quiet)
        _sync(device)
        loop_ms = ((time.perf_counter() - start) * 1000 - checkpoint_ms) / settings.steps
        peak = _peak_mb(device)
    ms = loop_ms + checkpoint_ms * 11 / 1000
    return BenchResult("erase_loop", ms, 1000 / ms, peak,
                       {"unit": "steps/s", "loop_ms_per_step": round(loop_ms, 2),
                        "checkpoint_ms": round(checkpoint_ms, 1), "steps_logged": len(history),
                        "seconds_per_1000_steps": ms})


def bench_ops(settings: BenchSettings, device: torch.device) -> list[BenchResult]:
    from eg3d.ops import bias_act, cuda_kernels, upsample2d, upfirdn2d, setup_filter

    full = settings.config == "full"
    results = []
    have_kernels = device.type == "cuda" and cuda_kernels.available()
    impls = ["ref"] + (["cuda"] if have_kernels else [])
    f = setup_filter([1, 3, 3, 1]).to(device)
    shapes = {
        "bias_act_lrelu": ([4, 512, 256, 256] if full else [2, 64, 64, 64]),
        "upsample2d": ([4, 96, 128, 128] if full else [2, 96, 32, 32]),
        "upfirdn2d_conv_pad1": ([4, 512, 129, 129] if full else [2, 64, 33, 33]),
    }
    for name, shape in shapes.items():
        x = torch.randn(shape, device=device, requires_grad=True)
        b = torch.randn(shape[1], device=device, requires_grad=True)
        for impl in impls:
            if name == "bias_act_lrelu":
                fn = lambda: bias_act(x, b, act="lrelu", impl=impl)  # noqa: E731
            elif name == "upsample2d":
                fn = lambda: upsample2d(x, f, impl=impl)  # noqa: E731
            else:
                fn = lambda: upfirdn2d(x, f, padding=[1, 1, 1, 1], gain=4, impl=impl)  # noqa: E731

            def fwd_bwd(fn=fn):
                y = fn()
                y.backward(torch.ones_like(y))

            ms, peak = time_it(lambda: fn(), device, settings.steps, settings.warmup)
            ms_b, _ = time_it(fwd_bwd, device, settings.steps, settings.warmup)
            results.append(BenchResult(f"op_{name}_{impl}", ms, 1000 / ms, peak,
                                       {"shape": shape, "forward_backward_ms": ms_b}))
    return results


def bench_audit(settings: BenchSettings, device: torch.device) -> list[BenchResult]:
    """The parts of one `guide audit` (guide.audit) at its default settings, with random weights:
    an optimisation-attack step (`guide.audit.attack.optimise_latent`: render with backward into
    the W+ latent, LPIPS-VGG, IR-SE50 identity loss, Adam), a render without gradient (four
    latents per pass, as the leakage curves), and scoring one image (MTCNN + IR-101, as the
    evaluation); then the whole audit's time estimated from `guide.audit.audit_workload`."""
    from guide.audit import audit_workload, optimise_latent
    from guide.config import AttackConfig, AuditConfig, CameraConfig
    from guide.evaluate.identity import identity_scorer
    from guide.identity import IDLoss, ir_se50
    from guide.perceptual import lpips_vgg
    from guide.render import render_views, to_uint8

    G = _build(settings, device)
    torch.manual_seed(settings.seed)
    lp = lpips_vgg(random_backbone=True, device=device)
    id_loss = IDLoss(ir_se50(device=device))
    scorer = identity_scorer(device=device, random_weights=True, seed=settings.seed)
    rng = torch.Generator().manual_seed(settings.seed)
    c = _cameras(1, device, rng)
    w = G.mapping(torch.randn(1, G.z_dim, generator=rng).to(device), c).detach()
    target = G.synthesis(w + 0.5, c, noise_mode="const")["image"].detach()
    one_step = AttackConfig(steps=1)
    camera = CameraConfig()
    chunk = AuditConfig().leakage.chunk
    images = to_uint8(render_views(G, w, camera, [0.0]))

    def attack_step():
        with _autocast(settings, device):
            return optimise_latent(G, target, c, w, lp, id_loss, one_step)

    def render():
        with _autocast(settings, device):
            return render_views(G, w.repeat(chunk, 1, 1), camera, [0.0])

    step_ms, step_peak = time_it(attack_step, device, settings.steps, settings.warmup)
    render_ms, render_peak = time_it(render, device, settings.steps, settings.warmup)
    score_ms, score_peak = time_it(lambda: scorer.embeddings(list(images)), device, settings.steps, settings.warmup)
    render_ms /= chunk
    work = audit_workload(AuditConfig())
    seconds = (work["attack_steps"] * step_ms + work["renders"] * render_ms + work["scored_images"] * score_ms) / 1000
    estimate = {"estimated_audit_seconds": round(seconds, 1), **work,
                "what": "defaults: photo erasure, 4 retained identities, 64 impostors"}
    return [BenchResult("audit_attack_step", step_ms, 1000 / step_ms, step_peak, {"unit": "steps/s"}),
            BenchResult("audit_render", render_ms, 1000 / render_ms, render_peak,
                        {"unit": "images/s", "latents_per_pass": chunk}),
            BenchResult("audit_score_image", score_ms, 1000 / score_ms, score_peak,
                        {"unit": "images/s", "note": "MTCNN + IR-101"}),
            BenchResult("audit_estimate", seconds * 1000, 1000 / max(seconds * 1000, 1e-9), 0.0, estimate)]


def environment(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
            "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        from eg3d.ops import cuda_kernels

        info["kernels"] = cuda_kernels.build_status() if hasattr(cuda_kernels, "build_status") else None
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def run_bench(settings: BenchSettings, progress: Callable[[str], None] = print) -> dict:
    """Run the chosen sections; returns {'settings', 'environment', 'results'}."""
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA device is available")
    tf32 = settings.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = device.type == "cuda"
    results: list[BenchResult] = []
    for section in settings.sections:
        progress(f"bench: {section} ...")
        if section == "forward":
            results.append(bench_forward(settings, device))
        elif section == "ltu_step":
            results.append(bench_ltu_step(settings, device))
        elif section == "ltu_step_reference_style":
            results.append(bench_ltu_step(settings, device, reference_style=True))
        elif section == "erase_loop":
            results.append(bench_erase_loop(settings, device))
        elif section == "ops":
            results.extend(bench_ops(settings, device))
        elif section == "audit":
            results.extend(bench_audit(settings, device))
        else:
            raise ValueError(f"unknown bench section {section!r}")
    rows = [asdict(r) for r in results]
    return {"settings": asdict(settings), "environment": environment(device), "results": rows,
            "speedup_vs_reference_style": speedups(rows)}


def speedups(results: list) -> dict:
    """name -> how many times faster than the reference-style step (when it was measured)."""
    reference = next((r["ms"] for r in results if r["name"] == "ltu_step_reference_style"), None)
    if reference is None:
        return {}
    return {r["name"]: reference / r["ms"] for r in results
            if r["name"].startswith(("ltu_step", "erase_loop")) and r["ms"] > 0}


def format_table(report: dict) -> str:
    env = report["environment"]
    head = f"device: {env.get('gpu', env.get('cpu', ''))} ({env['device']}), torch {env['torch']}, " \
           f"precision {report['settings']['precision']}, config {report['settings']['config']}"
    extras = [flag for flag in ("compile", "channels_last", "fused_adam", "cuda_graph") if report["settings"].get(flag)]
    if extras:
        head += ", " + ", ".join(extras)
    ratio = speedups(report["results"])
    rows = [head, f"{'benchmark':34s} {'ms':>10s} {'per s':>9s} {'peak MiB':>9s} {'x ref':>6s}  notes"]
    for r in report["results"]:
        notes = ", ".join(f"{k}={v}" for k, v in r["extra"].items() if k != "loss_per_step")  # in the JSON
        times = f"{ratio[r['name']]:6.2f}" if r["name"] in ratio else f"{'':6s}"
        rows.append(f"{r['name']:34s} {r['ms']:10.2f} {r['per_s']:9.2f} {r['peak_mem_mb']:9.0f} {times}  {notes}")
    return "\n".join(rows)


def write_json(report: dict, path) -> None:
    from pathlib import Path

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(path)
