"""Profile the full-size LTU step on CUDA: where does the time go?

    python scripts/gpu_profile.py [--precision fp32|tf32|bf16] [--fused-adam] [--cuda-graph]
                                  [--channels-last] [--steps 3] [--out DIR]

The trainer is built and warmed up (for --cuda-graph: up to and including the capture) outside
the profiler, so the profile holds only the steps themselves (the model's upload to the GPU was
counted as per-step copies before). Prints, and writes to DIR/profile_<variant>.txt:
  1. host traffic of one step (guide.transfer.TransferCounter: host→device copies, host waits);
  2. our ranges — ltu.render_trainable / ltu.render_source / ltu.lpips / ltu.id_loss /
     ltu.backward / ltu.adam and eg3d.backbone / eg3d.renderer / eg3d.superresolution — by total
     CUDA time (a CUDA graph's replay has no ranges: only its kernels);
  3. the top CUDA kernels by self CUDA time (what to optimise next), and the memcpy counts.
`--device cpu --config tiny` smoke-tests the script.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from guide.bench import BenchSettings, _autocast, _ltu_trainer, _warmup
from guide.transfer import TransferCounter


def variant_name(args) -> str:
    flags = [("fused", args.fused_adam), ("graph", args.cuda_graph), ("cl", args.channels_last)]
    return "_".join([args.precision] + [name for name, on in flags if on])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--fused-adam", action="store_true")
    parser.add_argument("--cuda-graph", action="store_true")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu to smoke-test the script")
    parser.add_argument("--config", default="full", choices=["full", "tiny"])
    parser.add_argument("--nrr", type=int, default=None, help="neural rendering resolution (default 128 full)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    settings = BenchSettings(device=args.device, config=args.config, steps=args.steps, warmup=2,
                             precision=args.precision, channels_last=args.channels_last,
                             fused_adam=args.fused_adam, cuda_graph=args.cuda_graph,
                             neural_rendering_resolution=args.nrr)
    torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.benchmark = True
    trainer, _, _ = _ltu_trainer(settings, device)
    records = []
    with _autocast(settings, device):
        for _ in range(_warmup(settings)):
            records.append(trainer.step_on_device())
        trainer.read(records)
        with TransferCounter() as counter:
            record = trainer.step_on_device()
        trainer.read([record])
        if cuda:
            torch.cuda.synchronize(device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            records = [trainer.step_on_device() for _ in range(args.steps)]
            trainer.read(records)
            if cuda:
                torch.cuda.synchronize(device)
    traffic = f"host traffic of one step: {dict(counter.counts) or 'none'} ({dict(counter.ops)})"
    averages = prof.key_averages()
    ours = [e for e in averages if e.key.startswith(("ltu.", "eg3d."))]
    lines = [f"{'range':28s} {'calls':>6s} {'CUDA total ms':>14s} {'CPU total ms':>13s}"]
    for e in sorted(ours, key=lambda e: (-e.device_time_total, -e.cpu_time_total)):
        lines.append(f"{e.key:28s} {e.count:6d} {e.device_time_total / 1000:14.1f} {e.cpu_time_total / 1000:13.1f}")
    copies = [f"{e.key}: {e.count / args.steps:.1f} per step" for e in averages if e.key.startswith("Memcpy")]
    ranges = "\n".join(lines)
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    kernels = averages.table(sort_by=sort, row_limit=40, max_name_column_width=80)
    text = "\n\n".join([f"variant {variant_name(args)}, {args.steps} profiled steps", traffic, ranges,
                        "\n".join(copies) or "no memcpy events", kernels])
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"profile_{variant_name(args)}.txt").write_text(text)


if __name__ == "__main__":
    main()
