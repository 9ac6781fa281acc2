#!/usr/bin/env bash
# The one script a GPU session runs (device tool): kernels, parity on CUDA, benchmarks.
# Usage (repo root, on the GPU machine): bash scripts/gpu_session.sh OUTDIR FIXTURES_DIR
# Every section is independent and time-boxed: a failure is logged and the next one runs.
set -u
OUTDIR=${1:-${OUT:-/tmp/gpu_out}}
FIX=${2:-../shared/fixtures/eg3d}
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD:$PWD/third_party${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=/tmp/torch_ext
section() { echo; echo "=== $1 ($(date +%T))"; }
B="python3 -m guide.cli bench --device cuda"

section "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

section "kernels: build, values/gradients vs reference, op timings"
timeout 150 python3 scripts/gpu_check.py --quick --test-timeout 60 --out "$OUTDIR/gpu_check.json" || echo "gpu_check failed ($?)"

section "generator parity on CUDA (tiny fixture)"
timeout 60 python3 scripts/gpu_parity.py --fixtures "$FIX" --out "$OUTDIR/gpu_parity.json" || echo "gpu_parity failed ($?)"

section "bench: full-size forward + LTU step (ours, batched) + reference-style step; fp32 (SR fp16 as upstream)"
timeout 120 $B --steps 5 --warmup 2 --only forward --only ltu_step --only ltu_step_reference_style \
  --json "$OUTDIR/bench_fp32.json" || echo "bench fp32 failed ($?)"

section "bench: LTU step with the PyTorch reference ops (kernels off)"
EG3D_DISABLE_CUDA_KERNELS=1 timeout 50 $B --steps 3 --warmup 1 --only ltu_step \
  --json "$OUTDIR/bench_refops.json" || echo "bench refops failed ($?)"

section "bench: LTU step in tf32 and bf16"
timeout 50 $B --steps 5 --warmup 2 --precision tf32 --only ltu_step --json "$OUTDIR/bench_tf32.json" || echo "tf32 failed ($?)"
timeout 50 $B --steps 5 --warmup 2 --precision bf16 --only ltu_step --json "$OUTDIR/bench_bf16.json" || echo "bf16 failed ($?)"
section "done"
