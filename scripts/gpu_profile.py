"""Profile one full-size LTU-shaped step on CUDA: where does the time go?

    python scripts/gpu_profile.py [--precision fp32|tf32|bf16] [--out DIR]

Prints torch.profiler tables (our record_function ranges: eg3d.backbone / eg3d.renderer /
eg3d.superresolution, then the top CUDA kernels) and writes them to DIR/profile_*.txt.
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
    parser.add_argument("--precision", default="tf32")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()
    settings = BenchSettings(device="cuda", steps=3, warmup=2, precision=args.precision)
    torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.benchmark = True
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        result = bench_ltu_step(settings, torch.device("cuda"))
    print(result)
    ka = prof.key_averages()
    ranges = ka.table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60)
    kernels = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=35, max_name_column_width=70)
    print(ranges)
    print(kernels)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"profile_{args.precision}.txt").write_text(ranges + "\n\n" + kernels)


if __name__ == "__main__":
    main()
