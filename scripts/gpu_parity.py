"""GPU parity: run the tiny fixture generator on CUDA and compare with the CPU reference numbers.

    python scripts/gpu_parity.py --fixtures ../shared/fixtures/eg3d [--out parity.json]

Runs the deterministic forward of `tiny_G.pkl` on CUDA in float32 (TF32 off, SR forced to
fp32) with the compiled kernels and with the PyTorch reference ops, then in the upstream
default mixed precision (SR blocks in fp16), and reports max abs differences against the
fixture outputs (computed by upstream on CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

import eg3d
from eg3d.ops import cuda_kernels


def _summary_diff(ours: torch.Tensor, summary: dict) -> float:
    s, o = summary["stride"], summary["offset"]
    diff = (ours[..., o::s, o::s].double().cpu() - summary["strided"].double()).abs().max().item()
    for crop in summary.get("crops", []):
        y0, x0, h, w = crop["y0"], crop["x0"], crop["h"], crop["w"]
        d = (ours[..., y0:y0 + h, x0:x0 + w].double().cpu() - crop["values"].double()).abs().max().item()
        diff = max(diff, d)
    return diff


def run(fixtures: Path) -> dict:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ref = torch.load(fixtures / "tiny_parity.pt", weights_only=True)
    G = eg3d.load_network_pkl(fixtures / "tiny_G.pkl", device="cuda")["G_ema"]
    z, c = ref["inputs"]["z"].cuda(), ref["inputs"]["c"].cuda()
    case = ref["ws_cases"][ref["synthesis_ws_case_index"]]
    results = {"kernels": cuda_kernels.build_status() if hasattr(cuda_kernels, "build_status") else None}
    variants = {
        "fp32_kernels": dict(env=None, force_fp32=True),
        "fp32_reference_ops": dict(env="1", force_fp32=True),
        "sr_fp16_kernels (upstream CUDA default)": dict(env=None, force_fp32=False),
    }
    for name, v in variants.items():
        if v["env"]:
            os.environ["EG3D_DISABLE_CUDA_KERNELS"] = v["env"]
        else:
            os.environ.pop("EG3D_DISABLE_CUDA_KERNELS", None)
        with torch.no_grad():
            ws = G.mapping(z, c, truncation_psi=case["truncation_psi"], truncation_cutoff=case["truncation_cutoff"])
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = G.synthesis(ws, c, noise_mode="const", deterministic=True, force_fp32=v["force_fp32"])
            torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) * 1000
        results[name] = {
            "ws": (ws.cpu() - case["ws"]).abs().max().item(),
            "image_raw": (out["image_raw"].cpu() - ref["outputs"]["image_raw"]).abs().max().item(),
            "image_depth": (out["image_depth"].cpu() - ref["outputs"]["image_depth"]).abs().max().item(),
            "image": _summary_diff(out["image"], ref["outputs"]["image"]),
            "image_max_abs_ref": ref["outputs"]["image"]["max"],
            "forward_ms": ms,
        }
        print(name, json.dumps(results[name]), flush=True)
    os.environ.pop("EG3D_DISABLE_CUDA_KERNELS", None)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixtures", type=Path, default=Path("../shared/fixtures/eg3d"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_parity: no CUDA device")
    results = run(args.fixtures)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
