"""Compiled CUDA kernels for `bias_act` and `upfirdn2d`.

The sources live in ``eg3d/ops/cuda/`` (``eg3d_ops_kernels.cu`` plus the
PyTorch binding ``eg3d_ops.cpp``). They are compiled on first use with
``torch.utils.cpp_extension.load`` (ninja), once per process and thread-safe,
into ``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``) under a
folder named after the Python, CUDA and torch versions; later processes reuse
the build.

* :func:`available` says whether the kernels can be used. It is False off-CUDA,
  when ``EG3D_DISABLE_CUDA_KERNELS=1`` is set, or when the build fails; a failed
  build warns once (with the reason) and the PyTorch reference path is used.
  With ``required=True`` it raises ``RuntimeError`` with the reason instead.
* :func:`build_status` reports the state for ``guide doctor``.
* :func:`bias_act` / :func:`upfirdn2d` have the signatures and numerics of the
  reference implementations; inputs the kernels do not cover (float64, a
  filter that needs a gradient, mixed bias dtype, ...) go to the reference.

Set ``EG3D_CUDA_KERNELS_VERBOSE=1`` to see the compiler output.
"""
from __future__ import annotations

import functools
import glob
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

from .bias_act import ACTIVATIONS, bias_act_reference, resolve_params
from .upfirdn2d import _pair, parse_padding, upfirdn2d_reference

__all__ = ["available", "build_status", "bias_act", "upfirdn2d", "source_files", "extension_name"]

EXTENSION_NAME = "eg3d_guide_ops"
SOURCE_DIR = Path(__file__).resolve().parent / "cuda"
_SOURCES = ("eg3d_ops.cpp", "eg3d_ops_kernels.cu")
_DISABLE_ENV = "EG3D_DISABLE_CUDA_KERNELS"
_VERBOSE_ENV = "EG3D_CUDA_KERNELS_VERBOSE"
_KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

_lock = threading.Lock()
_module: Any = None
_warned = False
_status: dict[str, Any] = {
    "state": "not-attempted",  # 'not-attempted' | 'ok' | 'failed' | 'no-cuda'
    "error": None,
    "build_seconds": None,
    "extension_path": None,
    "build_dir": None,
}


def extension_name() -> str:
    return EXTENSION_NAME


def source_files() -> list[Path]:
    """The .cpp/.cu sources compiled into the extension."""
    return [SOURCE_DIR / s for s in _SOURCES]


def _disabled() -> bool:
    return os.environ.get(_DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _build_directory() -> Path:
    """Where the extension is built: $TORCH_EXTENSIONS_DIR (or ~/.cache/torch_extensions)/<versions>/<name>."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "torch_extensions")
    cuda = (torch.version.cuda or "none").replace(".", "")
    torch_version = torch.__version__.split("+")[0].replace(".", "_")
    tag = f"py{sys.version_info.major}{sys.version_info.minor}_cu{cuda}_torch{torch_version}"
    return Path(root) / tag / EXTENSION_NAME


def _cuda_toolkit_fixups() -> tuple[list[str], list[str]]:
    """Extra include/library paths when torch's guess of CUDA_HOME lacks the headers.

    cpp_extension derives CUDA_HOME from `which nvcc`; a wrapper script such as
    /usr/local/bin/nvcc makes that /usr/local, which has no cuda_runtime.h.
    Then look for a real toolkit and add its include and lib64 folders.
    """
    from torch.utils import cpp_extension

    home = cpp_extension.CUDA_HOME
    if home is None:
        raise RuntimeError("no CUDA toolkit found (nvcc not on PATH and CUDA_HOME unset)")
    if os.path.exists(os.path.join(home, "include", "cuda_runtime.h")):
        return [], []
    candidates = [os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]
    candidates += sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    for cand in candidates:
        if cand and os.path.exists(os.path.join(cand, "include", "cuda_runtime.h")):
            libs = [f"-L{os.path.join(cand, d)}" for d in ("lib64", "lib") if os.path.isdir(os.path.join(cand, d))]
            return [os.path.join(cand, "include")], libs
    raise RuntimeError(f"CUDA_HOME={home} has no include/cuda_runtime.h and no other CUDA toolkit was found")


def _build_extension() -> Any:
    """Compile (or reuse) and import the extension; raises on failure."""
    from torch.utils import cpp_extension

    cpp_extension.verify_ninja_availability()
    include_paths, ldflags = _cuda_toolkit_fixups()
    build_dir = _build_directory()
    build_dir.mkdir(parents=True, exist_ok=True)
    _status["build_dir"] = str(build_dir)
    verbose = os.environ.get(_VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    module = cpp_extension.load(
        name=EXTENSION_NAME,
        sources=[str(p) for p in source_files()],
        extra_cflags=["-O3"],
        extra_cuda_cflags=["-O3", "-lineinfo"],
        extra_include_paths=[str(SOURCE_DIR)] + include_paths,
        extra_ldflags=ldflags,
        build_directory=str(build_dir),
        verbose=verbose,
        with_cuda=True,
    )
    return module


def _short_reason(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # Compiler logs are long; keep the first line and the lines that say "error".
    keep = lines[:1] + [ln for ln in lines[1:] if "error" in ln.lower()][:5]
    short = "\n".join(keep)
    return short[:2000]


def _ensure_module() -> Optional[Any]:
    """Build/import once per process (thread-safe); None when that failed."""
    global _module
    if _status["state"] == "ok":
        return _module
    with _lock:
        if _status["state"] == "ok":
            return _module
        if _status["state"] == "failed":
            return None
        start = time.perf_counter()
        try:
            module = _build_extension()
        except BaseException as err:  # noqa: BLE001 - any failure (compiler, linker, import) means "use the reference"
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
            _status.update(state="failed", error=_short_reason(err), build_seconds=time.perf_counter() - start)
            return None
        _module = module
        _status.update(
            state="ok",
            error=None,
            build_seconds=time.perf_counter() - start,
            extension_path=getattr(module, "__file__", None),
        )
        return module


def _unavailable(reason: str, required: bool, warn: bool) -> bool:
    global _warned
    if required:
        raise RuntimeError(f"the eg3d CUDA kernels are not available: {reason}")
    if warn and not _warned:
        _warned = True
        warnings.warn(
            f"eg3d CUDA kernels unavailable ({reason}); using the PyTorch reference implementation",
            RuntimeWarning,
            stacklevel=3,
        )
    return False


def available(required: bool = False) -> bool:
    """Whether the compiled kernels can be used (building them on the first call).

    False (never an exception) off-CUDA, when EG3D_DISABLE_CUDA_KERNELS=1, or
    when the build fails, in which case one warning says why. With
    `required=True` a RuntimeError carrying the reason is raised instead.
    """
    if _disabled():
        return _unavailable(f"disabled by {_DISABLE_ENV}", required, warn=False)
    try:
        has_cuda = torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        has_cuda = False
    if not has_cuda:
        if _status["state"] == "not-attempted":
            _status["state"] = "no-cuda"
        return _unavailable("CUDA is not available", required, warn=False)
    if _status["state"] == "no-cuda":
        _status["state"] = "not-attempted"
    if _ensure_module() is None:
        return _unavailable(f"build failed: {_status['error']}", required, warn=True)
    return True


def build_status(attempt: bool = False) -> dict:
    """State of the kernels for `guide doctor`.

    Keys: state ('not-attempted' | 'ok' | 'failed' | 'no-cuda'), error (str or
    None), build_seconds (float or None; the time to compile or load the
    extension), extension_path (the loaded .so), build_dir, disabled (bool:
    EG3D_DISABLE_CUDA_KERNELS is set), sources. With `attempt=True` the build
    is tried first (as `available()` would).
    """
    if attempt:
        try:
            available()
        except Exception:  # noqa: BLE001 - available() should never raise without required
            pass
    status = dict(_status)
    if status["state"] == "not-attempted":
        try:
            if not torch.cuda.is_available():
                status["state"] = "no-cuda"
        except Exception:  # noqa: BLE001
            status["state"] = "no-cuda"
    if status["build_dir"] is None:
        status["build_dir"] = str(_build_directory())
    status["disabled"] = _disabled()
    status["sources"] = [str(p) for p in source_files()]
    return status


def _reset_for_tests() -> None:
    """Forget the build state and the warning (tests only)."""
    global _module, _warned
    with _lock:
        _module = None
        _warned = False
        _status.update(state="not-attempted", error=None, build_seconds=None, extension_path=None, build_dir=None)


# ---------------------------------------------------------------------------
# bias_act


@functools.lru_cache(maxsize=None)
def _clamp_gradient_inclusive() -> bool:
    """Whether torch.clamp passes the gradient where the input equals a bound.

    PyTorch changed this convention (subgradient 1 at the bounds until 2026,
    the minimum-norm 0 after); the kernel follows the installed version so that
    it matches `bias_act_reference`'s autograd.
    """
    with torch.enable_grad():  # first called inside an autograd.Function's forward, where grad is off
        t = torch.tensor([1.0, -1.0], requires_grad=True)
        (g,) = torch.autograd.grad(t.clamp(-1.0, 1.0).sum(), t)
    return bool(g[0].item() == 1.0)


def _empty(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(0, dtype=t.dtype, device=t.device)


def _match_layout(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`t` with exactly `like`'s strides (copied when they differ)."""
    if t.stride() == like.stride():
        return t
    return torch.empty_like(like).copy_(t)


def _dense(t: torch.Tensor) -> torch.Tensor:
    if t.is_contiguous():
        return t
    if t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t
    return t.contiguous()


class _BiasActCuda(torch.autograd.Function):
    """Kernel forward; kernel first derivative (see `_BiasActCudaGrad`)."""

    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):  # noqa: D401
        spec = ACTIVATIONS[act]
        y = _module.bias_act(
            x, b if b is not None else _empty(x), _empty(x), dim, spec.cuda_id,
            alpha, gain, clamp, _clamp_gradient_inclusive(), 0,
        )
        ctx.params = (dim, act, alpha, gain, clamp)
        ctx.plain = act == "linear" and clamp < 0  # dz = dy * gain needs neither x nor b
        ctx.has_bias = b is not None
        if ctx.plain:
            ctx.save_for_backward()
        else:
            ctx.save_for_backward(x, b)
        return y

    @staticmethod
    def backward(ctx, dy):
        dim, act, alpha, gain, clamp = ctx.params
        if ctx.plain:
            dz = dy * gain if gain != 1 else dy
        else:
            x, b = ctx.saved_tensors
            dz = _BiasActCudaGrad.apply(dy, x, b, dim, act, alpha, gain, clamp)
        dx = dz if ctx.needs_input_grad[0] else None
        db = None
        if ctx.has_bias and ctx.needs_input_grad[1]:
            dims = [i for i in range(dz.ndim) if i != dim]
            db = dz.sum(dims) if dims else dz
        return dx, db, None, None, None, None, None


class _BiasActCudaGrad(torch.autograd.Function):
    """dz = dy * gain * act'(x + b) * [inside clamp], by the kernel.

    Its own backward (second derivatives, e.g. for an R1 penalty) falls back to
    the reference: it differentiates `bias_act_reference`'s autograd gradient
    with PyTorch ops. Third derivatives are not supported.
    """

    @staticmethod
    def forward(ctx, dy, x, b, dim, act, alpha, gain, clamp):
        dy = _match_layout(dy.to(x.dtype), x)
        spec = ACTIVATIONS[act]
        dz = _module.bias_act(
            x, b if b is not None else _empty(x), dy, dim, spec.cuda_id,
            alpha, gain, clamp, _clamp_gradient_inclusive(), 1,
        )
        ctx.save_for_backward(dy, x, b)
        ctx.params = (dim, act, alpha, gain, clamp)
        return dz

    @staticmethod
    def backward(ctx, ddz):
        dy, x, b = ctx.saved_tensors
        dim, act, alpha, gain, clamp = ctx.params
        with torch.enable_grad():
            dy_ = dy.detach().requires_grad_(True)
            x_ = x.detach().requires_grad_(True)
            b_ = b.detach().requires_grad_(True) if b is not None else None
            y = bias_act_reference(x_, b_, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
            (gz,) = torch.autograd.grad(y, x_, dy_, create_graph=True)
            inputs = [dy_, x_] + ([b_] if b_ is not None else [])
            grads = torch.autograd.grad(gz, inputs, ddz, allow_unused=True)
        d_dy, d_x = grads[0], grads[1]
        d_b = grads[2] if b is not None else None
        return d_dy, d_x, d_b, None, None, None, None, None


def bias_act(
    x: torch.Tensor,
    b: Optional[torch.Tensor] = None,
    dim: int = 1,
    act: str = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
) -> torch.Tensor:
    """`bias_act_reference` computed by the CUDA kernel (same signature and results).

    Gradients wrt `x` and `b` use the kernel; double backward falls back to the
    reference formula (see `_BiasActCudaGrad`). Inputs the kernel does not
    cover (non-CUDA, float64, bias of another dtype) use the reference.
    """
    spec, alpha, gain, clamp = resolve_params(act, alpha, gain, clamp)
    if b is not None:
        if x.ndim == 0 or not -x.ndim <= dim < x.ndim or b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {tuple(b.shape)} does not match dimension {dim} of x {tuple(x.shape)}")
        dim = dim % x.ndim
    else:
        dim = 0  # unused without a bias
    use_kernel = (
        x.is_cuda
        and x.dtype in _KERNEL_DTYPES
        and (b is None or (b.dtype == x.dtype and b.device == x.device))
        and x.ndim >= 1
        and available()
    )
    if not use_kernel:
        return bias_act_reference(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    x = _dense(x)
    if b is not None:
        b = b.contiguous()
    return _BiasActCuda.apply(x, b, dim, act, alpha, gain, clamp)


# ---------------------------------------------------------------------------
# upfirdn2d


def _taps(f: Optional[torch.Tensor], flip_filter: bool, gain: float, device) -> torch.Tensor:
    """The float32 [fh, fw] correlation kernel that the reference convolves with."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=device)  # made on the device: no host copy
    f = f.detach().to(device=device, dtype=torch.float32)
    if f.ndim == 1:
        f = f[:, None] * f[None, :]  # separable: rows along y, columns along x
    elif f.ndim != 2:
        raise ValueError(f"filter must be 1-D or 2-D, got shape {tuple(f.shape)}")
    if not flip_filter:
        f = f.flip([0, 1])
    return (f * gain).contiguous()


def _out_size(size: int, up: int, pad0: int, pad1: int, ftaps: int, down: int) -> int:
    return (size * up + pad0 + pad1 - ftaps + down) // down


def _backward_padding(in_hw, out_hw, ftaps_hw, up, down, pad):
    """Padding of the gradient pass: upfirdn2d(dy, flipped taps, up=down, down=up, padding=this).

    Per axis, the forward pass is "zero-insert by up, shift by pad0, correlate
    with taps g (length k), keep every down-th". Its adjoint is "zero-insert dy
    by down, shift by k-1-pad0, correlate with g reversed, keep every up-th".
    The far side is padded (or cropped) so that the correlation has length
    (in-1)*up + 1, i.e. exactly `in` outputs survive the final stride:
        pad1' = in*up - out*down + pad0 - up + 1.
    """
    (ih, iw), (oh, ow), (fh, fw) = in_hw, out_hw, ftaps_hw
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = pad
    return (
        fw - px0 - 1,
        iw * upx - ow * downx + px0 - upx + 1,
        fh - py0 - 1,
        ih * upy - oh * downy + py0 - upy + 1,
    )


# True: always use the generic upfirdn2d kernel, never the tiled 4x4 fast path (tests, benchmarks).
_FORCE_GENERIC_UPFIRDN = False


class _Upfirdn2dCuda(torch.autograd.Function):
    """Kernel upfirdn2d with correlation taps; linear, so its backward is itself."""

    @staticmethod
    def forward(ctx, x, taps, up, down, pad):
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        y = _module.upfirdn2d(
            x, taps, up[0], up[1], down[0], down[1], pad[0], pad[1], pad[2], pad[3], channels_last, _FORCE_GENERIC_UPFIRDN
        )
        ctx.save_for_backward(taps)
        ctx.geom = (tuple(x.shape[2:]), tuple(y.shape[2:]), up, down, pad)
        return y

    @staticmethod
    def backward(ctx, dy):
        (taps,) = ctx.saved_tensors
        in_hw, out_hw, up, down, pad = ctx.geom
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        bpad = _backward_padding(in_hw, out_hw, tuple(taps.shape), up, down, pad)
        dx = _Upfirdn2dCuda.apply(dy, taps.flip([0, 1]).contiguous(), down, up, bpad)
        assert tuple(dx.shape[2:]) == in_hw, (dx.shape, in_hw)
        return dx, None, None, None, None


def upfirdn2d(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    up=1,
    down=1,
    padding=0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """`upfirdn2d_reference` computed by the CUDA kernel (same signature and results).

    Separable (1-D) filters are expanded to 2-D. The gradient wrt `x` is the
    kernel applied to the gradient (flipped filter, up/down swapped); a filter
    that requires a gradient, float64 and non-CUDA inputs use the reference.
    """
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    pad = parse_padding(padding)
    use_kernel = (
        x.is_cuda
        and x.ndim == 4
        and x.dtype in _KERNEL_DTYPES
        and min(upx, upy, downx, downy) >= 1
        and (f is None or ((f.ndim in (1, 2)) and f.numel() > 0 and not (f.requires_grad and torch.is_grad_enabled())))
    )
    if use_kernel:
        fw, fh = (1, 1) if f is None else (f.shape[-1], f.shape[0])
        oh = _out_size(x.shape[2], upy, pad[2], pad[3], fh, downy)
        ow = _out_size(x.shape[3], upx, pad[0], pad[1], fw, downx)
        use_kernel = oh >= 1 and ow >= 1 and x.shape[2] >= 1 and x.shape[3] >= 1 and available()
    if not use_kernel:
        return upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    taps = _taps(f, flip_filter, float(gain), x.device)  # the kernel takes any strides of x
    return _Upfirdn2dCuda.apply(x, taps, (upx, upy), (downx, downy), tuple(int(p) for p in pad))
