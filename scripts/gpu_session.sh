#!/usr/bin/env bash
# The one script a GPU session runs (device tool). Sections run in priority order, each
# time-boxed inside one overall budget (BUDGET_S, default 520 s, under the tool's 600 s limit):
# a failure or timeout is logged and the next section runs.
#
# Usage (repo root, on the GPU machine): bash scripts/gpu_session.sh OUTDIR [FIXTURES_DIR]
#   CHECKS=1   also rerun the kernel value/gradient tests and the generator parity check
#              (verified on an H200 on 2026-11-26; needs FIXTURES_DIR with tiny_G.pkl, tiny_parity.pt)
set -u
OUTDIR=${1:-${OUT:-/tmp/gpu_out}}
FIX=${2:-../shared/fixtures/eg3d}
BUDGET_S=${BUDGET_S:-520}
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD:$PWD/third_party${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=/tmp/torch_ext
START=$SECONDS
section() { echo; echo "=== $1 ($(date +%T), $((SECONDS - START)) s used)"; }
# run MAX_S CMD...: run CMD with a timeout of MAX_S seconds or what is left of the budget.
run() {
  local max=$1; shift
  local left=$((BUDGET_S - (SECONDS - START)))
  if [ "$left" -lt 20 ]; then echo "skipped (budget spent): $*"; return; fi
  [ "$max" -gt "$left" ] && max=$left
  timeout "$max" "$@" || echo "failed or timed out ($?): $*"
}
B="python3 -m guide.cli bench --device cuda"

section "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

section "bench (TF32): forward, LTU step = LTUTrainer.step (kernels build here on first use), reference-style step"
run 180 $B --precision tf32 --steps 5 --warmup 2 --only forward --only ltu_step --only ltu_step_reference_style \
  --json "$OUTDIR/bench_tf32.json"

section "profile of the TF32 LTU step (ranges + top kernels)"
run 100 python3 scripts/gpu_profile.py --precision tf32 --out "$OUTDIR"

section "LTU step variants: fp32, bf16, TF32 + channels_last, bf16 + channels_last"
run 60 $B --precision fp32 --steps 3 --warmup 1 --only ltu_step --json "$OUTDIR/bench_fp32.json"
run 60 $B --precision bf16 --steps 5 --warmup 2 --only ltu_step --json "$OUTDIR/bench_bf16.json"
run 60 $B --precision tf32 --channels-last --steps 5 --warmup 2 --only ltu_step --json "$OUTDIR/bench_tf32_cl.json"
run 60 $B --precision bf16 --channels-last --steps 5 --warmup 2 --only ltu_step --json "$OUTDIR/bench_bf16_cl.json"

section "LTU step, TF32 + torch.compile (warm-up includes compiling)"
run 300 $B --precision tf32 --compile --steps 5 --warmup 3 --only ltu_step --json "$OUTDIR/bench_tf32_compile.json"

if [ "${CHECKS:-0}" = "1" ]; then
  section "kernels: build, values/gradients vs reference, op timings"
  run 150 python3 scripts/gpu_check.py --quick --test-timeout 60 --out "$OUTDIR/gpu_check.json"
  section "generator parity on CUDA (tiny fixture)"
  run 60 python3 scripts/gpu_parity.py --fixtures "$FIX" --out "$OUTDIR/gpu_parity.json"
fi
section "summary (ms per call, peak MiB) of every bench JSON"
python3 - "$OUTDIR" <<'PY'
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("bench_*.json")):
    report = json.loads(path.read_text())
    for r in report["results"]:
        print(f"{path.stem:22s} {r['name']:28s} {r['ms']:9.1f} ms {r['peak_mem_mb']:8.0f} MiB")
PY
section "done"
