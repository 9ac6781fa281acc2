#!/usr/bin/env bash
# The one script a GPU session runs (device tool): kernels, parity on CUDA, benchmarks.
# Usage (repo root, on the GPU machine): bash scripts/gpu_session.sh OUTDIR FIXTURES_DIR
# Every section is independent: a failure is logged and the next section still runs.
set -u
OUTDIR=${1:-${OUT:-/tmp/gpu_out}}
FIX=${2:-../shared/fixtures/eg3d}
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD:$PWD/third_party${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=/tmp/torch_ext
section() { echo; echo "=== $1 ($(date +%T))"; }

section "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

section "kernels: build, values/gradients vs reference, op timings"
timeout 300 python3 scripts/gpu_check.py --out "$OUTDIR/gpu_check.json" || echo "gpu_check failed ($?)"

section "generator parity on CUDA (tiny fixture)"
timeout 120 python3 scripts/gpu_parity.py --fixtures "$FIX" --out "$OUTDIR/gpu_parity.json" || echo "gpu_parity failed ($?)"

section "bench: full-size LTU step and forward, fp32 (upstream precision: SR fp16)"
timeout 200 python3 -m guide.cli bench --device cuda --steps 10 --warmup 3 --only forward --only ltu_step \
  --only ltu_step_reference_style --json "$OUTDIR/bench_fp32.json" || echo "bench fp32 failed ($?)"

section "bench: same with the PyTorch reference ops (kernels off)"
EG3D_DISABLE_CUDA_KERNELS=1 timeout 150 python3 -m guide.cli bench --device cuda --steps 10 --warmup 3 \
  --only forward --only ltu_step --json "$OUTDIR/bench_refops.json" || echo "bench refops failed ($?)"

section "bench: tf32 and bf16"
timeout 120 python3 -m guide.cli bench --device cuda --steps 10 --warmup 3 --precision tf32 --only ltu_step \
  --json "$OUTDIR/bench_tf32.json" || echo "bench tf32 failed ($?)"
timeout 120 python3 -m guide.cli bench --device cuda --steps 10 --warmup 3 --precision bf16 --only ltu_step \
  --json "$OUTDIR/bench_bf16.json" || echo "bench bf16 failed ($?)"
section "done"
