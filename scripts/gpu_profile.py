"""Profile the full-size LTU step on CUDA: where does the time go?

    python scripts/gpu_profile.py [--precision fp32|tf32|bf16] [--channels-last] [--out DIR]

Prints torch.profiler tables and writes them to DIR/profile_<precision>.txt:
  1. our ranges — ltu.render_trainable / ltu.render_source / ltu.lpips / ltu.id_loss /
     ltu.backward / ltu.adam (guide/trainer.py) and eg3d.backbone / eg3d.renderer /
     eg3d.superresolution (eg3d/triplane.py), by total CUDA time;
  2. the top CUDA kernels by self CUDA time (what to optimise next).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from guide.bench import BenchSettings, bench_ltu_step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu to smoke-test the script")
    parser.add_argument("--config", default="full", choices=["full", "tiny"])
    parser.add_argument("--nrr", type=int, default=None, help="neural rendering resolution (default 128 full)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()
    settings = BenchSettings(device=args.device, config=args.config, steps=3, warmup=2,
                             precision=args.precision, channels_last=args.channels_last,
                             neural_rendering_resolution=args.nrr)
    torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.benchmark = True
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        result = bench_ltu_step(settings, torch.device(args.device))
    print(result)
    averages = prof.key_averages()
    ours = [e for e in averages if e.key.startswith(("ltu.", "eg3d."))]
    lines = [f"{'range':28s} {'calls':>6s} {'CUDA total ms':>14s} {'CPU total ms':>13s}"]
    for e in sorted(ours, key=lambda e: (-e.device_time_total, -e.cpu_time_total)):
        lines.append(f"{e.key:28s} {e.count:6d} {e.device_time_total / 1000:14.1f} {e.cpu_time_total / 1000:13.1f}")
    ranges = "\n".join(lines)
    sort = "self_cuda_time_total" if args.device.startswith("cuda") else "self_cpu_time_total"
    kernels = averages.table(sort_by=sort, row_limit=40, max_name_column_width=80)
    print(ranges)
    print(kernels)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = args.precision + ("_cl" if args.channels_last else "")
    (args.out / f"profile_{suffix}.txt").write_text(ranges + "\n\n" + kernels)


if __name__ == "__main__":
    main()
