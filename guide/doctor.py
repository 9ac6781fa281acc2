"""``guide doctor``: what this machine offers the toolkit (software, GPUs, kernels, checkpoints)."""
from __future__ import annotations

import importlib
import platform
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import guide
from guide.checkpoints import registry


def _which_nvcc() -> Optional[str]:
    found = shutil.which("nvcc")
    if found:
        return found
    try:
        from torch.utils.cpp_extension import CUDA_HOME
    except Exception:
        return None
    candidate = Path(CUDA_HOME) / "bin" / "nvcc" if CUDA_HOME else None
    return str(candidate) if candidate is not None and candidate.exists() else None


def _torch_info() -> Dict[str, Any]:
    import torch

    cuda_ok = torch.cuda.is_available()
    gpus: List[Dict[str, Any]] = []
    if cuda_ok:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(
                {
                    "index": i,
                    "name": props.name,
                    "memory_bytes": int(props.total_memory),
                    "capability": f"{props.major}.{props.minor}",
                }
            )
    cudnn = torch.backends.cudnn
    return {
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": cuda_ok,
        "cudnn": cudnn.version() if cudnn.is_available() else None,
        "gpus": gpus,
    }


def _version_of(module: str) -> Optional[str]:
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:
        return None


def _kernel_status() -> Dict[str, Any]:
    """``eg3d.ops.cuda_kernels.build_status()`` when it exists, else a note why not."""
    try:
        kernels = importlib.import_module("eg3d.ops.cuda_kernels")
    except Exception as exc:  # a broken install should still give a report
        return {"state": "unknown", "error": f"cannot import eg3d.ops.cuda_kernels: {exc}"}
    status = getattr(kernels, "build_status", None)
    if not callable(status):
        return {"state": "unknown", "error": "eg3d.ops.cuda_kernels has no build_status()"}
    try:
        result = status()
    except Exception as exc:
        return {"state": "error", "error": f"build_status() failed: {type(exc).__name__}: {exc}"}
    return dict(result) if isinstance(result, dict) else {"state": str(result)}


def _checkpoints(directory: Path) -> Dict[str, Any]:
    files = {}
    for name, entry in registry().items():
        path = directory / name
        present = path.is_file()
        files[name] = {"present": present, "bytes": path.stat().st_size if present else None, "what": entry.what}
    return {"dir": str(directory), "exists": directory.is_dir(), "files": files}


def collect(checkpoint_dir: Path) -> Dict[str, Any]:
    """Gather the whole report as JSON-friendly data."""
    return {
        "guide": guide.__version__,
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "platform": platform.platform(),
        **_torch_info(),
        "torchvision": _version_of("torchvision"),
        "tools": {"nvcc": _which_nvcc(), "ninja": shutil.which("ninja")},
        "cuda_kernels": _kernel_status(),
        "checkpoints": _checkpoints(checkpoint_dir),
    }


def _size(n: Optional[int]) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def format_report(info: Dict[str, Any]) -> str:
    """Human-readable text of :func:`collect`'s result."""
    absent = "not found"
    cuda = f"available (build {info['cuda_build']})" if info["cuda_available"] else (
        f"not available (torch built for CUDA {info['cuda_build']})" if info["cuda_build"] else "not available (CPU-only torch)"
    )
    rows = [
        ("guide", info["guide"]),
        ("Python", f"{info['python']['version']} ({info['python']['executable']})"),
        ("platform", info["platform"]),
        ("torch", info["torch"]),
        ("torchvision", info["torchvision"] or "not installed"),
        ("CUDA", cuda),
        ("cuDNN", str(info["cudnn"]) if info["cudnn"] is not None else "not available"),
    ]
    gpus = info["gpus"] or []
    rows += [(f"GPU {g['index']}", f"{g['name']}, {_size(g['memory_bytes'])}, sm {g['capability']}") for g in gpus]
    if not gpus:
        rows.append(("GPUs", "none"))
    rows += [("nvcc", info["tools"]["nvcc"] or absent), ("ninja", info["tools"]["ninja"] or absent)]
    kernels = info["cuda_kernels"]
    extra = ", ".join(f"{k}={v}" for k, v in kernels.items() if k != "state" and v not in (None, ""))
    rows.append(("CUDA kernels", f"{kernels.get('state', 'unknown')}" + (f" ({extra})" if extra else "")))
    ck = info["checkpoints"]
    rows.append(("checkpoints", ck["dir"] + ("" if ck["exists"] else "  (directory does not exist)")))

    width = max(len(k) for k, _ in rows) + 2
    lines = [f"{k:<{width}}{v}" for k, v in rows]
    name_width = max(len(n) for n in ck["files"])
    for name, f in ck["files"].items():
        mark = "ok     " if f["present"] else "missing"
        size = _size(f["bytes"]) if f["present"] else ""
        lines.append(f"  [{mark}] {name:<{name_width}}  {size:>9}  {f['what']}")
    found = sum(f["present"] for f in ck["files"].values())
    lines.append(f"  {found}/{len(ck['files'])} checkpoint files present")
    return "\n".join(lines)
