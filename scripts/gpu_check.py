#!/usr/bin/env python
"""One-shot GPU check of the eg3d CUDA kernels (bias_act, upfirdn2d).

Run on a machine with a CUDA GPU, from anywhere (the repo need not be installed):

    PYTHONUNBUFFERED=1 python scripts/gpu_check.py [--out PATH] [--skip-tests] [--skip-bench]

Sections (each one's failure is recorded and the script goes on):
  env    torch / CUDA / device / nvcc facts
  build  compile + load the extension (timed; fresh unless the cache already has it)
  tests  `pytest tests/eg3d/ops -m cuda` in a subprocess (log saved beside the JSON)
  bench  kernel vs reference at EG3D-sized shapes, forward and forward+backward
         (median of CUDA-event timings), plus the kernel's error vs the reference

Writes a JSON report to --out (default $OUT/gpu_check.json when $OUT is set,
else ./gpu_check.json) and prints a short table last. Designed to finish in
well under 4 minutes on an H100 including the build.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (REPO / "third_party", REPO):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_section(report: dict, name: str, fn) -> None:
    start = time.perf_counter()
    log(f"--- {name}")
    entry: dict = {}
    try:
        entry.update(fn() or {})
        entry["ok"] = entry.get("ok", True)
    except BaseException as err:  # noqa: BLE001 - keep going whatever happens
        if isinstance(err, KeyboardInterrupt):
            raise
        entry["ok"] = False
        entry["error"] = f"{type(err).__name__}: {err}"
        entry["traceback"] = traceback.format_exc()[-6000:]
        log(f"{name} FAILED: {entry['error'][:2000]}")
    entry["seconds"] = round(time.perf_counter() - start, 3)
    report["sections"][name] = entry
    log(f"{name}: {'ok' if entry['ok'] else 'FAILED'} in {entry['seconds']:.1f}s")


# ---------------------------------------------------------------------------


def section_env() -> dict:
    import torch
    from torch.utils import cpp_extension

    info = {
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cuda_home": cpp_extension.CUDA_HOME,
        "torch_extensions_dir": os.environ.get("TORCH_EXTENSIONS_DIR"),
        "torch_cuda_arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST"),
        "ninja": shutil.which("ninja"),
        "nvcc": shutil.which("nvcc"),
        "cpu_count": os.cpu_count(),
    }
    if info["nvcc"]:
        try:
            out = subprocess.run([info["nvcc"], "--version"], capture_output=True, text=True, timeout=30).stdout
            info["nvcc_version"] = out.strip().splitlines()[-1] if out.strip() else None
        except Exception as err:  # noqa: BLE001
            info["nvcc_version"] = f"error: {err}"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            device=torch.cuda.get_device_name(0),
            capability=".".join(map(str, torch.cuda.get_device_capability(0))),
            multiprocessors=props.multi_processor_count,
            memory_gib=round(props.total_memory / 2**30, 1),
            cudnn=torch.backends.cudnn.version(),
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
        )
    for k, v in info.items():
        log(f"  {k}: {v}")
    return info


def section_build() -> dict:
    import torch
    from eg3d.ops import cuda_kernels as ck

    if not torch.cuda.is_available():
        return {"ok": False, "error": "no CUDA device", "status": ck.build_status()}
    full_error: list[str] = []
    original = ck._build_extension

    def build_and_keep_log():
        try:
            return original()
        except BaseException as err:
            full_error.append("".join(traceback.format_exception(err))[-12000:])
            raise

    ck._build_extension = build_and_keep_log
    try:
        start = time.perf_counter()
        ok = ck.available()
        seconds = time.perf_counter() - start
    finally:
        ck._build_extension = original
    status = ck.build_status()
    result = {"ok": bool(ok), "build_seconds": round(seconds, 2), "status": status}
    if full_error:
        result["full_error"] = full_error[0]
        print(full_error[0], flush=True)
    log(f"  available={ok} state={status['state']} in {seconds:.1f}s; so={status['extension_path']}")
    return result


def section_tests(out_dir: Path, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "third_party"), str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = [sys.executable, "-m", "pytest", "tests/eg3d/ops", "-m", "cuda", "-q", "-rfEs", "--tb=short", "-p", "no:cacheprovider", "--durations=10"]
    log("  " + " ".join(cmd))
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        output, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as err:
        output = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        output += f"\n*** pytest timed out after {timeout}s"
        rc = -1
    seconds = time.perf_counter() - start
    log_path = out_dir / "gpu_check_pytest.log"
    try:
        log_path.write_text(output)
    except OSError:
        log_path = None
    lines = output.strip().splitlines()
    summary = next((ln for ln in reversed(lines) if " passed" in ln or " failed" in ln or " error" in ln), lines[-1] if lines else "")
    print("\n".join(lines[-60:]), flush=True)
    return {"ok": rc == 0, "returncode": rc, "summary": summary, "pytest_seconds": round(seconds, 2), "log": str(log_path) if log_path else None, "tail": "\n".join(lines[-40:])}


# ---------------------------------------------------------------------------
# benchmarks


def _time_cuda(fn, min_iters=5, max_iters=50, budget_s=0.25, warmup=2) -> dict:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    # one probe run to size the number of repetitions
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    probe = start.elapsed_time(end) / 1e3
    iters = int(max(min_iters, min(max_iters, budget_s / max(probe, 1e-6))))
    times = []
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return {"median_ms": round(statistics.median(times), 4), "min_ms": round(min(times), 4), "iters": iters}


def _bench_case(name, make_inputs, kernel_fn, ref_fn, bytes_moved=None) -> dict:
    import torch

    inputs = make_inputs()
    row: dict = {"case": name}
    with torch.no_grad():
        y_k = kernel_fn(*inputs)
        y_r = ref_fn(*inputs)
        diff = (y_k.double() - y_r.double()).norm().item()
        row["rel_err_vs_ref"] = diff / max(y_r.double().norm().item(), 1e-30)
        row["kernel_fwd"] = _time_cuda(lambda: kernel_fn(*inputs))
        row["ref_fwd"] = _time_cuda(lambda: ref_fn(*inputs))
    del y_k, y_r
    grad_inputs = [t.detach().requires_grad_(True) if t.is_floating_point() else t for t in inputs]
    dy = None

    def fwd_bwd(fn):
        nonlocal dy
        y = fn(*grad_inputs)
        if dy is None:
            dy = torch.randn_like(y)
        torch.autograd.grad(y, [t for t in grad_inputs if t.requires_grad], dy)

    row["kernel_fwd_bwd"] = _time_cuda(lambda: fwd_bwd(kernel_fn))
    row["ref_fwd_bwd"] = _time_cuda(lambda: fwd_bwd(ref_fn))
    row["speedup_fwd"] = round(row["ref_fwd"]["median_ms"] / row["kernel_fwd"]["median_ms"], 2)
    row["speedup_fwd_bwd"] = round(row["ref_fwd_bwd"]["median_ms"] / row["kernel_fwd_bwd"]["median_ms"], 2)
    if bytes_moved:
        row["kernel_fwd_GBps"] = round(bytes_moved / (row["kernel_fwd"]["median_ms"] / 1e3) / 1e9, 1)
    del inputs, grad_inputs, dy
    torch.cuda.empty_cache()
    return row


def section_bench(quick: bool) -> dict:
    import torch
    from eg3d.ops import cuda_kernels as ck
    from eg3d.ops.bias_act import bias_act
    from eg3d.ops.upfirdn2d import setup_filter, upfirdn2d, upsample2d

    if not ck.available():
        return {"ok": False, "error": "kernels unavailable: " + str(ck.build_status().get("error"))}
    dev = "cuda"
    f4 = setup_filter([1, 3, 3, 1], device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)

    def rand(shape, dtype):
        return torch.randn(shape, device=dev, generator=gen, dtype=torch.float32).to(dtype)

    cases = []
    for shape in ([4, 512, 256, 256], [4, 128, 512, 512]):
        for dtype in (torch.float32, torch.float16):
            for clamp in (None, 256.0):
                if quick and (dtype == torch.float16 or clamp is not None):
                    continue
                name = f"bias_act lrelu {str(dtype)[6:]} {shape}" + (f" clamp={clamp:g}" if clamp else "")
                elems = 1
                for s in shape:
                    elems *= s
                nbytes = 2 * elems * torch.empty(0, dtype=dtype).element_size()
                cases.append((
                    name,
                    (lambda shape=shape, dtype=dtype: (rand(shape, dtype), rand([shape[1]], dtype))),
                    (lambda x, b, clamp=clamp: bias_act(x, b, act="lrelu", clamp=clamp, impl="cuda")),
                    (lambda x, b, clamp=clamp: bias_act(x, b, act="lrelu", clamp=clamp, impl="ref")),
                    nbytes,
                ))
    for shape in ([4, 96, 128, 128], [4, 3, 256, 256]):
        for dtype in (torch.float32, torch.float16):
            if quick and dtype == torch.float16:
                continue
            name = f"upsample2d 4x4 {str(dtype)[6:]} {shape}"
            esz = torch.empty(0, dtype=dtype).element_size()
            nbytes = (shape[0] * shape[1] * shape[2] * shape[3] * 5) * esz  # read x, write 4x
            cases.append((
                name,
                (lambda shape=shape, dtype=dtype: (rand(shape, dtype),)),
                (lambda x: upsample2d(x, f4, impl="cuda")),
                (lambda x: upsample2d(x, f4, impl="ref")),
                nbytes,
            ))
    for dtype in (torch.float32, torch.float16):
        if quick and dtype == torch.float16:
            continue
        shape = [4, 512, 129, 129]
        esz = torch.empty(0, dtype=dtype).element_size()
        nbytes = (4 * 512 * 129 * 129 + 4 * 512 * 128 * 128) * esz
        cases.append((
            f"upfirdn2d conv-path pad1 gain4 {str(dtype)[6:]} {shape}",
            (lambda shape=shape, dtype=dtype: (rand(shape, dtype),)),
            (lambda x: upfirdn2d(x, f4, padding=[1, 1, 1, 1], gain=4, impl="cuda")),
            (lambda x: upfirdn2d(x, f4, padding=[1, 1, 1, 1], gain=4, impl="ref")),
            nbytes,
        ))

    # the generic upfirdn2d kernel on the same geometries (the tiled 4x4 path is the default)
    cases = [c + (False,) for c in cases]
    cases += [(c[0] + " [generic kernel]",) + c[1:-1] + (True,) for c in cases if not c[0].startswith("bias_act")]

    rows, failures = [], []
    for name, make, kfn, rfn, nbytes, force_generic in cases:
        try:
            ck._FORCE_GENERIC_UPFIRDN = force_generic  # forward and backward passes alike
            try:
                row = _bench_case(name, make, kfn, rfn, nbytes)
            finally:
                ck._FORCE_GENERIC_UPFIRDN = False
            rows.append(row)
            log(
                f"  {name}: fwd {row['kernel_fwd']['median_ms']:.3f} ms vs ref {row['ref_fwd']['median_ms']:.3f} ms "
                f"(x{row['speedup_fwd']}), fwd+bwd {row['kernel_fwd_bwd']['median_ms']:.3f} vs {row['ref_fwd_bwd']['median_ms']:.3f} "
                f"(x{row['speedup_fwd_bwd']}), rel err {row['rel_err_vs_ref']:.1e}, {row.get('kernel_fwd_GBps', '?')} GB/s"
            )
        except Exception as err:  # noqa: BLE001
            failures.append({"case": name, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]})
            log(f"  {name}: FAILED {type(err).__name__}: {err}")
            torch.cuda.empty_cache()
    return {"ok": not failures, "rows": rows, "failures": failures, "note": "reference uses PyTorch defaults (cudnn TF32 allowed)"}


# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else Path("gpu_check.json")
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer benchmark cases (fp32 only)")
    parser.add_argument("--test-timeout", type=float, default=150.0)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    report: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, "sections": {}}

    def save():
        report["total_seconds"] = round(time.perf_counter() - t0, 2)
        try:
            args.out.write_text(json.dumps(report, indent=2, default=str))
        except OSError as err:
            log(f"could not write {args.out}: {err}")

    run_section(report, "env", section_env)
    run_section(report, "build", section_build)
    save()
    if not args.skip_tests:
        run_section(report, "tests", lambda: section_tests(args.out.parent, args.test_timeout))
        save()
    if not args.skip_bench:
        run_section(report, "bench", lambda: section_bench(args.quick))
    save()

    # short table last
    print("\n==== gpu_check summary ====")
    for name, sec in report["sections"].items():
        extra = ""
        if name == "build":
            extra = f"state={sec.get('status', {}).get('state')} build={sec.get('build_seconds')}s"
        elif name == "tests":
            extra = sec.get("summary", "")
        elif name == "env":
            extra = f"{sec.get('device')} torch {sec.get('torch')} cuda {sec.get('torch_cuda')}"
        print(f"{name:6s} {'ok' if sec.get('ok') else 'FAIL':4s} {sec.get('seconds', 0):7.1f}s  {extra}  {sec.get('error', '')[:300]}")
    for row in report["sections"].get("bench", {}).get("rows", []):
        print(
            f"  {row['case']:55s} fwd {row['kernel_fwd']['median_ms']:8.3f}/{row['ref_fwd']['median_ms']:8.3f} ms x{row['speedup_fwd']:<5}"
            f" f+b {row['kernel_fwd_bwd']['median_ms']:8.3f}/{row['ref_fwd_bwd']['median_ms']:8.3f} ms x{row['speedup_fwd_bwd']:<5} err {row['rel_err_vs_ref']:.1e}"
        )
    print(f"total {report['total_seconds']:.1f}s; report: {args.out}")
    return 0 if all(sec.get("ok") for sec in report["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
