"""`guide batch-bench`: time and peak memory of a joint erase against the number of identities.

For each K (default 1, 8, 64, 200) a fresh *spawned* process (so the peak memory of one K does
not hide another's) builds the tiny generator (``eg3d.configs.tiny``, random weights, neural
rendering resolution ``nrr``), LPIPS-VGG16 with random weights, no identity network, maps K
random identities, takes their UFO targets and times ``steps`` LTU steps of the joint trainer.

Up to ``exact_max`` identities the step is the exact joint objective (all K identities per step,
``identity_chunk`` per forward pass). Above it the step samples ``sample`` identities
(``sample_identities``, a stochastic estimate of the objective); the report then also gives the
exact step's time estimated as ``step_s · K / sample`` (the identity terms dominate and scale
linearly with K; global preservation is a constant 2 latents). Memory: on CUDA the peak of
allocated memory; on CPU the process's peak resident set size, and ``base_mb``, the same before
the first step (the difference is what training adds).
"""
from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional, Sequence


@dataclass
class BatchBenchSettings:
    counts: Sequence[int] = (1, 8, 64, 200)
    steps: int = 1
    warmup: int = 0
    device: str = "cpu"
    nrr: int = 16
    identity_chunk: int = 4
    exact_max: int = 8
    sample: int = 4
    adj_batch: int = 2
    global_batch: int = 2
    threads: Optional[int] = None
    seed: int = 0


@dataclass
class BatchBenchRow:
    identities: int
    objective: str  # 'exact' | 'sampled'
    identities_per_step: int
    forward_passes_per_step: int
    setup_s: float
    step_s: float
    peak_mb: float
    base_mb: float
    estimated_exact_step_s: Optional[float] = None
    extra: dict = field(default_factory=dict)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_one(settings: BatchBenchSettings, count: int) -> BatchBenchRow:
    """One K, in the current process."""
    import torch

    import eg3d
    from eg3d import configs
    from guide.batch.sampling import make_trainer
    from guide.config import method_preset
    from guide.perceptual import lpips_vgg
    from guide.render import camera_for
    from guide.ufo import ufo_target

    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    cuda = device.type == "cuda"
    torch.manual_seed(settings.seed)
    G = eg3d.TriPlaneGenerator(**configs.tiny()).to(device).eval().requires_grad_(False)
    G.neural_rendering_resolution = settings.nrr
    networks = type("Networks", (), {"lpips": lpips_vgg(random_backbone=True, device=device), "id_loss": None})()
    config = method_preset("guide")
    config.ltu.identity_chunk = settings.identity_chunk
    config.ltu.losses.adj_batch = settings.adj_batch
    config.ltu.losses.global_batch = settings.global_batch
    config.ltu.lr = 1e-3

    start = time.perf_counter()
    z = torch.randn(count, G.z_dim, generator=torch.Generator().manual_seed(settings.seed)).to(device)
    with torch.no_grad():
        w_u = G.mapping(z, camera_for(config.ltu.camera, device=device).repeat(count, 1))
    w_avg = G.backbone.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    w_t = ufo_target("extrapolated", w_u, w_avg, config.target.distance)
    sampled = count > settings.exact_max and settings.sample < count
    trainer = make_trainer(G, w_u, w_t, config.ltu, networks, settings.seed,
                           settings.sample if sampled else None, device)
    setup_s = time.perf_counter() - start
    for _ in range(settings.warmup):
        trainer.step()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) / 2**20
    else:
        base = _rss_mb()
    times = []
    for _ in range(settings.steps):
        t0 = time.perf_counter()
        trainer.step()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else _rss_mb()
    per_step = min(count, settings.sample) if sampled else count
    step_s = sorted(times)[len(times) // 2]
    return BatchBenchRow(count, "sampled" if sampled else "exact", per_step,
                         -(-per_step // settings.identity_chunk), setup_s, step_s, peak, base,
                         step_s * count / per_step if sampled else None,
                         {"threads": torch.get_num_threads(), "device": str(device)})


def _child(settings: BatchBenchSettings, count: int, queue) -> None:
    try:
        queue.put(("ok", asdict(bench_one(settings, count))))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def run_batch_bench(settings: BatchBenchSettings, progress: Callable[[str], None] = print) -> dict:
    """Each K in its own spawned process; returns {'settings', 'rows'}."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    rows: List[dict] = []
    for count in settings.counts:
        progress(f"batch-bench: {count} identities ...")
        queue = ctx.Queue()
        process = ctx.Process(target=_child, args=(settings, count, queue))
        process.start()
        status, value = queue.get()
        process.join()
        if status != "ok":
            raise RuntimeError(f"batch-bench with {count} identities failed: {value}")
        rows.append(value)
    return {"settings": asdict(settings), "rows": rows}


def format_table(report: dict) -> str:
    s = report["settings"]
    head = (f"joint erase, tiny EG3D (random weights), nrr {s['nrr']}, LPIPS-VGG (random weights), no ID network, "
            f"adj_batch {s['adj_batch']}, global_batch {s['global_batch']}, identity_chunk {s['identity_chunk']}, "
            f"{s['steps']} timed step(s), device {s['device']}")
    lines = [head, f"{'K':>5} {'objective':>9} {'ids/step':>8} {'passes':>6} {'setup s':>8} {'step s':>8} "
             f"{'exact step s':>12} {'base MiB':>9} {'peak MiB':>9}"]
    for r in report["rows"]:
        est = r["estimated_exact_step_s"]
        exact = f"{r['step_s']:.2f}" if est is None else f"~{est:.1f}"
        lines.append(f"{r['identities']:>5} {r['objective']:>9} {r['identities_per_step']:>8} "
                     f"{r['forward_passes_per_step']:>6} {r['setup_s']:>8.2f} {r['step_s']:>8.2f} {exact:>12} "
                     f"{r['base_mb']:>9.0f} {r['peak_mb']:>9.0f}")
    lines.append("exact step s: measured for exact rows; ~estimated (step_s · K / ids per step) for sampled rows")
    return "\n".join(lines)
