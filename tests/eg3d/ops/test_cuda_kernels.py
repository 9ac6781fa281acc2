"""eg3d.ops.cuda_kernels: the build/fallback machinery, a compile check, and GPU comparisons.

(a) CPU: `available()` / `build_status()` / EG3D_DISABLE_CUDA_KERNELS, the warning
    on a failed build, thread safety, and the Python autograd glue (backward
    padding formula, double-backward fallback) run against a fake extension
    that computes with the reference.
(b) nvcc compile check of the .cu file (skipped without nvcc), plus a slow full
    `cpp_extension.load` build for sm_90 that needs no GPU.
(c) `@pytest.mark.cuda`: kernel vs reference values and gradients on a GPU.
"""
import os
import shutil
import subprocess
import sys
import threading
import time
import types
import warnings

import pytest
import torch

from eg3d.ops import cuda_kernels as ck
from eg3d.ops.bias_act import ACTIVATIONS, bias_act, bias_act_reference
from eg3d.ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upfirdn2d_reference, upsample2d

ACTS = sorted(ACTIVATIONS)
ACT_BY_ID = {spec.cuda_id: name for name, spec in ACTIVATIONS.items()}


@pytest.fixture
def fresh_state(monkeypatch):
    """Run with a clean build state; restore the process's real state afterwards."""
    saved = (ck._module, ck._warned, dict(ck._status))
    monkeypatch.delenv("EG3D_DISABLE_CUDA_KERNELS", raising=False)
    ck._reset_for_tests()
    yield
    ck._module, ck._warned = saved[0], saved[1]
    ck._status.clear()
    ck._status.update(saved[2])


# ---------------------------------------------------------------------------
# (a) availability machinery


def test_available_false_without_cuda(fresh_state, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(ck, "_build_extension", lambda: pytest.fail("must not build without CUDA"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning off-CUDA
        assert ck.available() is False
        assert ck.available(required=False) is False
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        ck.available(required=True)
    st = ck.build_status()
    assert st["state"] == "no-cuda"
    assert st["error"] is None and st["disabled"] is False


def test_available_on_this_machine_never_raises(fresh_state):
    result = ck.available()
    assert isinstance(result, bool)
    if not torch.cuda.is_available():
        assert result is False


def test_disable_env(fresh_state, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(ck, "_build_extension", lambda: pytest.fail("must not build when disabled"))
    for value in ("1", "true", "YES"):
        monkeypatch.setenv("EG3D_DISABLE_CUDA_KERNELS", value)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert ck.available() is False
        with pytest.raises(RuntimeError, match="EG3D_DISABLE_CUDA_KERNELS"):
            ck.available(required=True)
        assert ck.build_status()["disabled"] is True
        assert ck.build_status()["state"] == "not-attempted"
    monkeypatch.setenv("EG3D_DISABLE_CUDA_KERNELS", "0")
    assert ck.build_status()["disabled"] is False


def test_build_failure_warns_once_and_falls_back(fresh_state, monkeypatch):
    calls = []

    def failing_build():
        calls.append(1)
        raise RuntimeError("Error building extension\nfoo.cu(3): error: nvcc exploded\nmore log")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(ck, "_build_extension", failing_build)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ck.available() is False
        assert ck.available() is False
    relevant = [w for w in caught if "eg3d CUDA kernels" in str(w.message)]
    assert len(relevant) == 1
    assert "nvcc exploded" in str(relevant[0].message) and "reference" in str(relevant[0].message)
    assert len(calls) == 1  # the failure is remembered
    st = ck.build_status()
    assert st["state"] == "failed" and "nvcc exploded" in st["error"]
    assert isinstance(st["build_seconds"], float)
    with pytest.raises(RuntimeError, match="nvcc exploded"):
        ck.available(required=True)


def test_build_runs_once_across_threads(fresh_state, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(__file__="/tmp/fake_ext.so")

    def slow_build():
        calls.append(1)
        time.sleep(0.05)
        return fake

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(ck, "_build_extension", slow_build)
    results = []
    threads = [threading.Thread(target=lambda: results.append(ck.available())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8 and len(calls) == 1
    st = ck.build_status()
    assert st["state"] == "ok" and st["extension_path"] == "/tmp/fake_ext.so" and st["error"] is None
    assert ck.available(required=True) is True


def test_build_status_keys_and_extensions_dir(fresh_state, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    st = ck.build_status()
    for key in ("state", "error", "build_seconds", "extension_path", "build_dir", "disabled", "sources"):
        assert key in st
    assert st["state"] in ("not-attempted", "no-cuda")
    assert st["build_dir"].startswith(str(tmp_path))
    assert ck.extension_name() in st["build_dir"]
    for src in st["sources"]:
        assert os.path.exists(src), src
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ck.build_status()["build_dir"].startswith(str(tmp_path / "xdg" / "torch_extensions"))


def test_cpu_tensors_use_the_reference():
    x = torch.randn(2, 3, 6, 5)
    b = torch.randn(3)
    torch.testing.assert_close(ck.bias_act(x, b, act="lrelu", clamp=0.5), bias_act_reference(x, b, act="lrelu", clamp=0.5))
    f = setup_filter([1, 3, 3, 1])
    torch.testing.assert_close(ck.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4), upfirdn2d_reference(x, f, up=2, padding=[2, 1, 2, 1], gain=4))
    with pytest.raises(ValueError):
        ck.bias_act(x, torch.randn(4))


def test_clamp_gradient_convention_probe_works_without_grad_mode():
    ck._clamp_gradient_inclusive.cache_clear()
    with torch.no_grad():  # as inside autograd.Function.forward
        flag = ck._clamp_gradient_inclusive()
    assert isinstance(flag, bool)


def test_clamp_gradient_convention_matches_reference():
    """The flag the kernel receives is what bias_act_reference's autograd does at the clamp bound."""
    x = torch.tensor([[2.0, -2.0, 1.0]], requires_grad=True)
    (g,) = torch.autograd.grad(bias_act_reference(x, act="linear", clamp=2.0).sum(), x)
    expected = 1.0 if ck._clamp_gradient_inclusive() else 0.0
    assert g.tolist() == [[expected, expected, 1.0]]


# ---------------------------------------------------------------------------
# (a2) the autograd glue, against a fake extension that computes with the reference


class FakeExtension:
    """Same entry points and conventions as the compiled module, computed with the reference."""

    def bias_act(self, x, b, dy, dim, act, alpha, gain, clamp, clamp_inclusive, mode):
        assert clamp_inclusive == ck._clamp_gradient_inclusive()
        name = ACT_BY_ID[act]
        b = b if b.numel() else None
        if mode == 0:
            return bias_act_reference(x, b, dim=dim, act=name, alpha=alpha, gain=gain, clamp=clamp)
        assert dy.stride() == x.stride()
        with torch.enable_grad():
            x_ = x.detach().requires_grad_(True)
            y = bias_act_reference(x_, b, dim=dim, act=name, alpha=alpha, gain=gain, clamp=clamp)
            (dz,) = torch.autograd.grad(y, x_, dy)
        return dz

    def upfirdn2d(self, x, taps, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1, channels_last, force_generic=False):
        assert taps.dtype == torch.float32 or taps.dtype == torch.float64
        return upfirdn2d_reference(
            x, taps.to(x.dtype), up=(up_x, up_y), down=(down_x, down_y), padding=[pad_x0, pad_x1, pad_y0, pad_y1],
            flip_filter=True,  # taps are a correlation kernel
        )


@pytest.fixture
def fake_ext(monkeypatch):
    monkeypatch.setattr(ck, "_module", FakeExtension())
    return ck._module


F_NONSYM = torch.tensor([[0.3, -1.2, 0.7, 2.0, 0.1], [1.5, 0.2, -0.4, 0.9, -2.2], [0.6, 1.1, -0.8, 0.05, 0.4]])
F_SEP = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
F_NONSYM4 = torch.tensor([[0.5, -1.0, 2.0, 0.25], [1.5, 0.75, -0.5, 1.0], [-2.0, 0.125, 1.0, 0.5], [0.25, 1.0, -0.75, 3.0]])
UPFIRDN_CASES = [
    # (f, up, down, padding, flip_filter, gain)
    (None, 1, 1, [0, 0, 0, 0], False, 1.0),
    (F_NONSYM, 1, 1, [2, 1, 1, 0], False, 1.0),
    (F_NONSYM, 2, 1, [2, 2, 1, 2], False, 4.0),
    (F_NONSYM, 1, 2, [1, 2, 1, 1], True, 1.0),
    (F_NONSYM, (2, 3), (3, 2), [1, -1, 2, -2], False, 0.5),
    (F_NONSYM, 3, 2, [-2, 1, -1, 3], True, 2.0),
    (F_SEP, 2, 1, [2, 1, 2, 1], False, 4.0),
    (F_SEP, 1, 2, [1, 1, 1, 1], True, 1.0),
    (F_SEP, 1, 1, [1, 1, 1, 1], False, 4.0),  # the conv2d_resample path
    (F_NONSYM.T.contiguous(), 2, 2, [0, 3, 4, 0], False, 1.0),
    # 4x4 filters with equal up/down per axis take the tiled fast path on the GPU
    (F_NONSYM4, 2, 1, [-1, 3, 2, 0], False, 4.0),
    (F_NONSYM4, 1, 2, [3, -1, 0, 2], True, 1.0),
    (F_NONSYM4, 1, 1, [1, 2, -1, 0], True, 2.0),
    (F_NONSYM4, 1, 1, [5, 0, 0, 6], False, 1.0),
]


def _upfirdn_kernel_path(x, f, up, down, padding, flip_filter, gain):
    """What cuda_kernels.upfirdn2d does once it has decided to use the kernel."""
    from eg3d.ops.upfirdn2d import _pair, parse_padding

    taps = ck._taps(f, flip_filter, float(gain), x.device).to(x.dtype)
    return ck._Upfirdn2dCuda.apply(x, taps, _pair(up), _pair(down), parse_padding(padding))


@pytest.mark.parametrize("case", range(len(UPFIRDN_CASES)))
def test_upfirdn2d_glue_forward_and_backward(fake_ext, case):
    f, up, down, padding, flip_filter, gain = UPFIRDN_CASES[case]
    f64 = None if f is None else f.double()
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64, requires_grad=True)
    ref = upfirdn2d_reference(x, f64, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    out = _upfirdn_kernel_path(x, f64, up, down, padding, flip_filter, gain)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(ref)
    (g_ref,) = torch.autograd.grad(ref, x, w)
    (g_out,) = torch.autograd.grad(out, x, w)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-12, atol=1e-12)
    # the backward pass (built from the padding formula) is itself differentiable
    fn = lambda x: _upfirdn_kernel_path(x, f64, up, down, padding, flip_filter, gain)
    small = torch.randn(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (small,), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradgradcheck(fn, (small,), eps=1e-6, atol=1e-8)


def test_backward_padding_sweep(fake_ext):
    """The gradient pass restores the input size and matches autograd for many geometries."""
    f = torch.randn(3, 2).double()  # float32-representable: the kernel path keeps taps in float32
    for up in (1, 2, 3):
        for down in (1, 2, 3):
            for pads in ([0, 0, 0, 0], [2, 1, 0, 3], [-1, 2, 1, -1], [3, 3, -2, -1]):
                for hw in ((5, 6), (6, 5)):
                    if hw[0] * up + pads[2] + pads[3] < 3 or hw[1] * up + pads[0] + pads[1] < 2:
                        continue  # empty output
                    x = torch.randn(1, 2, *hw, dtype=torch.float64, requires_grad=True)
                    ref = upfirdn2d_reference(x, f, up=up, down=down, padding=pads)
                    out = _upfirdn_kernel_path(x, f, up, down, pads, False, 1.0)
                    w = torch.randn_like(ref)
                    (g_ref,) = torch.autograd.grad(ref, x, w)
                    (g_out,) = torch.autograd.grad(out, x, w)
                    torch.testing.assert_close(g_out, g_ref, rtol=1e-12, atol=1e-12, msg=f"{up} {down} {pads} {hw}")


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [-1.0, 0.7])
def test_bias_act_glue_gradients(fake_ext, act, clamp):
    spec = ACTIVATIONS[act]
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    x = torch.where(x.abs() < 0.05, x + 0.1, x).requires_grad_(True)
    b = (0.1 * torch.randn(3, dtype=torch.float64)).requires_grad_(True)
    fn = lambda x, b: ck._BiasActCuda.apply(x, b, 1, act, spec.def_alpha, 1.3, clamp)
    torch.testing.assert_close(fn(x, b), bias_act_reference(x, b, act=act, gain=1.3, clamp=clamp))
    if clamp >= 0:
        # finite differences are invalid across the clamp bound; compare with autograd instead
        w = torch.randn(2, 3, 4, dtype=torch.float64)
        got = torch.autograd.grad(fn(x, b), (x, b), w)
        want = torch.autograd.grad(bias_act_reference(x, b, act=act, gain=1.3, clamp=clamp), (x, b), w)
        for g, r in zip(got, want):
            torch.testing.assert_close(g, r)
        return
    assert torch.autograd.gradcheck(fn, (x, b), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradgradcheck(fn, (x, b), eps=1e-6, atol=1e-6)


def test_bias_act_glue_dims_and_no_bias(fake_ext):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    for dim in (0, 2, 3):
        b = torch.randn(x.shape[dim], dtype=torch.float64, requires_grad=True)
        out = ck._BiasActCuda.apply(x, b, dim, "lrelu", 0.2, 2 ** 0.5, -1.0)
        ref = bias_act_reference(x, b, dim=dim, act="lrelu")
        torch.testing.assert_close(out, ref)
        w = torch.randn_like(ref)
        for g, r in zip(torch.autograd.grad(out, (x, b), w), torch.autograd.grad(ref, (x, b), w)):
            torch.testing.assert_close(g, r)
    # no bias, linear without clamp (dz = dy * gain, no kernel call in backward)
    out = ck._BiasActCuda.apply(x, None, 1, "linear", 0.0, 3.0, -1.0)
    (g,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(g, torch.full_like(x, 3.0))


# ---------------------------------------------------------------------------
# (b) compile checks


def _torch_cuda_include_paths():
    from torch.utils import cpp_extension

    try:
        return cpp_extension.include_paths(device_type="cuda")
    except TypeError:  # torch < 2.6: include_paths(cuda: bool)
        return cpp_extension.include_paths(cuda=True)


def _nvcc():
    return shutil.which("nvcc")


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found")
def test_nvcc_compiles_kernels(tmp_path):
    """Compile eg3d_ops_kernels.cu to an object file with the flags cpp_extension uses (about 2-5 s)."""
    from torch.utils import cpp_extension

    src = ck.SOURCE_DIR / "eg3d_ops_kernels.cu"
    obj = tmp_path / "eg3d_ops_kernels.o"
    nvcc_flags = list(getattr(cpp_extension, "COMMON_NVCC_FLAGS", []))
    cmd = [_nvcc(), "-c", str(src), "-o", str(obj), "-std=c++17", "-O3", "--compiler-options", "-fPIC"]
    cmd += [f"-DTORCH_EXTENSION_NAME={ck.extension_name()}", "-DTORCH_API_INCLUDE_EXTENSION_H"] + nvcc_flags
    cmd += ["-I" + str(ck.SOURCE_DIR)] + [f"-I{p}" for p in _torch_cuda_include_paths()]
    cmd += ["-gencode=arch=compute_90,code=sm_90", "-Werror", "all-warnings"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"nvcc failed ({seconds:.1f}s):\n{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    assert obj.exists() and obj.stat().st_size > 0
    print(f"nvcc compile check took {seconds:.1f}s")


@pytest.mark.slow
@pytest.mark.skipif(_nvcc() is None or shutil.which("ninja") is None, reason="nvcc or ninja not found")
def test_full_extension_build(fresh_state, monkeypatch, tmp_path):
    """cpp_extension.load of both sources into a temporary TORCH_EXTENSIONS_DIR (about 25 s on 2 cores).

    Needs no GPU: the arch list is fixed to sm_90. The import must succeed and
    the entry points must reject CPU tensors with a clear error.
    """
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    if not torch.cuda.is_available():
        monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")
    try:
        module = ck._build_extension()
    except RuntimeError as err:
        if "cuda_runtime.h" in str(err) or "no CUDA toolkit" in str(err):
            pytest.skip(f"no usable CUDA toolkit: {err}")
        raise
    assert os.path.dirname(module.__file__).startswith(str(tmp_path))
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        module.bias_act(torch.zeros(2, 3), torch.zeros(0), torch.zeros(0), 1, 3, 0.2, 1.0, -1.0, True, 0)
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        module.upfirdn2d(torch.zeros(1, 1, 4, 4), torch.ones(1, 1), 1, 1, 1, 1, 0, 0, 0, 0, False)


# ---------------------------------------------------------------------------
# (c) GPU: kernels against the reference
#
# Tolerances. The reference is evaluated in float64 on the same (upcast) inputs.
#   float32: elementwise rtol 1e-5, atol 1e-5 * max(1, max|ref|) -- the kernels
#            compute in fp32 with libm-accurate expf/tanhf (no fast math).
#   float16: relative L2 error 2e-3 (fp16 has a 2^-11 = 4.9e-4 unit roundoff;
#            outputs are rounded once, sums of rounded terms a bit more).
#   bfloat16: relative L2 error 1.6e-2 (unit roundoff 2^-8 = 3.9e-3).

cuda = pytest.mark.cuda
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REL_TOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


@pytest.fixture(scope="module")
def kernels():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    assert ck.available(required=True)  # a failed build fails the test, with the compiler's reason
    return ck


def assert_matches(got, ref, dtype, what=""):
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    assert got.dtype == dtype, (what, got.dtype)
    got64, ref64 = got.double(), ref.double()
    assert torch.isfinite(got64).all() == torch.isfinite(ref64).all(), what
    if dtype == torch.float32:
        scale = max(1.0, ref64.abs().max().item())
        torch.testing.assert_close(got64, ref64, rtol=1e-5, atol=1e-5 * scale, msg=what)
    else:
        err = (got64 - ref64).norm().item() / max(ref64.norm().item(), 1e-30)
        assert err < REL_TOL[dtype], f"{what}: relative error {err:.2e} >= {REL_TOL[dtype]:.1e}"


# The kernel takes 16-byte vectors when numel is a multiple of 4 (fp32) / 8 (fp16, bf16) and the
# pointers are aligned, with one bias load per vector when the bias stride is a multiple of that;
# otherwise one element at a time. These shapes cover all three.
BIAS_SHAPES = [((2, 8, 5, 7), 1), ((3, 16), 1), ((2, 4, 8, 8), 1), ((2, 3, 4, 33), 3), ((5, 6, 7), 0), ((4, 130), 1)]


@cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 0.6])
def test_cuda_bias_act_matches_reference(kernels, dtype, act, clamp):
    torch.manual_seed(0)
    for shape, dim in BIAS_SHAPES:
        for with_bias in (True, False):
            x = (torch.randn(shape, device="cuda") * 2).to(dtype).requires_grad_(True)
            b = (torch.randn(shape[dim], device="cuda")).to(dtype).requires_grad_(True) if with_bias else None
            kwargs = dict(dim=dim, act=act, clamp=clamp, gain=None if act != "sigmoid" else 1.7)
            y = bias_act(x, b, impl="cuda", **kwargs)
            x64 = x.detach().double().requires_grad_(True)
            b64 = b.detach().double().requires_grad_(True) if with_bias else None
            y64 = bias_act_reference(x64, b64, **kwargs)
            what = f"{act} {dtype} {shape} dim={dim} clamp={clamp} bias={with_bias}"
            assert_matches(y, y64, dtype, "forward " + what)
            dy = torch.randn(shape, device="cuda").to(dtype)
            grads = torch.autograd.grad(y, [x] + ([b] if with_bias else []), dy)
            grads64 = torch.autograd.grad(y64, [x64] + ([b64] if with_bias else []), dy.double())
            assert_matches(grads[0], grads64[0], dtype, "dx " + what)
            if with_bias:
                assert_matches(grads[1], grads64[1], dtype, "db " + what)


@cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_bias_act_layouts(kernels, dtype):
    torch.manual_seed(1)
    x = torch.randn(2, 6, 5, 4, device="cuda").to(dtype)
    b = torch.randn(6, device="cuda").to(dtype)
    variants = {
        "channels_last": x.contiguous(memory_format=torch.channels_last),
        "transposed": x.transpose(2, 3),  # not dense-contiguous: copied
        "sliced": torch.randn(2, 6, 5, 8, device="cuda").to(dtype)[..., ::2],
        "misaligned": torch.randn(1 + x.numel(), device="cuda").to(dtype)[1:].view(x.shape),  # scalar path
        "bias-stride-8": torch.randn(2, 6, 4, 2, device="cuda").to(dtype),  # one bias per 16-byte vector
    }
    for name, xv in variants.items():
        xv = xv.detach().requires_grad_(True)
        bv = b.detach().requires_grad_(True)
        y = bias_act(xv, bv, act="lrelu", clamp=1.0, impl="cuda")
        x64 = xv.detach().double().requires_grad_(True)
        b64 = bv.detach().double().requires_grad_(True)
        y64 = bias_act_reference(x64, b64, act="lrelu", clamp=1.0)
        assert_matches(y, y64, dtype, name)
        dy = torch.randn_like(y)
        g = torch.autograd.grad(y, (xv, bv), dy)
        g64 = torch.autograd.grad(y64, (x64, b64), dy.double())
        assert_matches(g[0], g64[0], dtype, "dx " + name)
        assert_matches(g[1], g64[1], dtype, "db " + name)


@cuda
def test_cuda_bias_act_clamp_boundary_and_kinks(kernels):
    """Exact bound/kink values: gradients follow the reference's autograd conventions."""
    vals = torch.tensor([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0], device="cuda")
    for act, clamp in [("linear", 2.0), ("relu", None), ("lrelu", None), ("elu", None), ("selu", None), ("linear", 0.0)]:
        x = vals.clone()[None].requires_grad_(True)
        y = bias_act(x, None, act=act, gain=1.0, clamp=clamp, impl="cuda")
        (g,) = torch.autograd.grad(y.sum(), x)
        xr = vals.clone()[None].requires_grad_(True)
        yr = bias_act_reference(xr, None, act=act, gain=1.0, clamp=clamp)
        (gr,) = torch.autograd.grad(yr.sum(), xr)
        torch.testing.assert_close(y, yr, rtol=1e-6, atol=1e-6, msg=act)
        torch.testing.assert_close(g, gr, rtol=1e-6, atol=1e-6, msg=f"{act} clamp={clamp}")


@cuda
def test_cuda_bias_act_double_backward(kernels):
    torch.manual_seed(2)
    for act, clamp in [("lrelu", None), ("lrelu", 0.8), ("swish", None), ("tanh", 1.5)]:
        x = torch.randn(2, 4, 3, 3, device="cuda", requires_grad=True)
        b = torch.randn(4, device="cuda", requires_grad=True)
        out = []
        for fn in (lambda x, b: bias_act(x, b, act=act, clamp=clamp, impl="cuda"),
                   lambda x, b: bias_act_reference(x, b, act=act, clamp=clamp)):
            y = fn(x, b)
            (gx,) = torch.autograd.grad((y * y).sum(), x, create_graph=True)
            out.append(torch.autograd.grad(gx.square().sum(), (x, b)))
        for g, r in zip(*out):
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4, msg=act)


@cuda
@pytest.mark.parametrize("generic", [False, True], ids=["auto", "generic"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", range(len(UPFIRDN_CASES)))
def test_cuda_upfirdn2d_matches_reference(kernels, dtype, case, generic, monkeypatch):
    """Both kernels (tiled 4x4 fast path where it applies, and the generic one) vs the reference."""
    monkeypatch.setattr(ck, "_FORCE_GENERIC_UPFIRDN", generic)
    f, up, down, padding, flip_filter, gain = UPFIRDN_CASES[case]
    torch.manual_seed(3 + case)
    kw = dict(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    for shape in ((2, 3, 7, 9), (1, 4, 16, 12), (1, 2, 37, 70)):  # the last spans several tiles
        base = torch.randn(shape, device="cuda").to(dtype)
        layouts = {
            "contiguous": base,
            "channels_last": base.contiguous(memory_format=torch.channels_last),
            "strided": torch.randn(shape[0], shape[1], shape[2], 2 * shape[3], device="cuda").to(dtype)[..., ::2],
        }
        for name, xv in layouts.items():
            x = xv.detach().requires_grad_(True)
            fc = None if f is None else f.cuda()
            y = upfirdn2d(x, fc, impl="cuda", **kw)
            x64 = x.detach().double().requires_grad_(True)
            y64 = upfirdn2d_reference(x64, None if f is None else fc.double(), **kw)
            what = f"case {case} {dtype} {shape} {name}"
            assert_matches(y, y64, dtype, "forward " + what)
            dy = torch.randn_like(y)
            (g,) = torch.autograd.grad(y, x, dy)
            (g64,) = torch.autograd.grad(y64, x64, dy.double())
            assert_matches(g, g64, dtype, "dx " + what)


RESAMPLE_HELPERS = {
    "upsample2d": lambda x, f, impl: upsample2d(x, f, impl=impl),
    "upsample2d-anisotropic": lambda x, f, impl: upsample2d(x, f, up=(2, 1), padding=[1, 0, 0, 1], impl=impl),
    "downsample2d": lambda x, f, impl: downsample2d(x, f, impl=impl),
    "filter2d": lambda x, f, impl: filter2d(x, f, padding=1, impl=impl),
}


@cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_resample_helpers(kernels, dtype):
    torch.manual_seed(4)
    x = torch.randn(2, 8, 16, 16, device="cuda").to(dtype)
    for taps in ([1, 3, 3, 1], [1, 2, 1], [1] * 8):
        f = setup_filter(taps, device="cuda")
        for name, fn in RESAMPLE_HELPERS.items():
            assert_matches(fn(x, f, "cuda"), fn(x.double(), f.double(), "ref"), dtype, f"{name} {taps}")


@cuda
def test_cuda_upfirdn2d_filter_gradient_falls_back(kernels):
    x = torch.randn(1, 2, 8, 8, device="cuda", requires_grad=True)
    f = setup_filter([1, 3, 3, 1], device="cuda").requires_grad_(True)
    y = upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl="cuda")
    gx, gf = torch.autograd.grad(y.square().sum(), (x, f))
    yr = upfirdn2d_reference(x, f, up=2, padding=[2, 1, 2, 1], gain=4)
    gxr, gfr = torch.autograd.grad(yr.square().sum(), (x, f))
    torch.testing.assert_close(gx, gxr, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gf, gfr, rtol=1e-4, atol=1e-3)


@cuda
def test_cuda_upfirdn2d_double_backward(kernels):
    torch.manual_seed(5)
    f = setup_filter([1, 3, 3, 1], device="cuda")
    x = torch.randn(2, 3, 9, 10, device="cuda", requires_grad=True)
    res = []
    for impl in ("cuda", "ref"):
        y = upfirdn2d(x, f, up=2, down=1, padding=[2, 1, 2, 1], gain=4, impl=impl)
        (gx,) = torch.autograd.grad(y.pow(3).sum(), x, create_graph=True)
        res.append(torch.autograd.grad(gx.square().sum(), x)[0])
    torch.testing.assert_close(res[0], res[1], rtol=1e-4, atol=1e-4)


@cuda
def test_cuda_dispatch_and_disable(kernels, monkeypatch):
    x = torch.randn(2, 3, 8, 8, device="cuda")
    f = setup_filter([1, 3, 3, 1], device="cuda")
    monkeypatch.setenv("EG3D_DISABLE_CUDA_KERNELS", "1")
    assert ck.available() is False
    with pytest.raises(RuntimeError):
        upfirdn2d(x, f, impl="cuda")
    torch.testing.assert_close(upfirdn2d(x, f, impl="auto"), upfirdn2d_reference(x, f))
    monkeypatch.delenv("EG3D_DISABLE_CUDA_KERNELS")
    assert ck.available() is True
    assert ck.build_status()["state"] == "ok"
    # float64 is not a kernel dtype: the reference runs even with impl='cuda'
    x64 = x.double()
    torch.testing.assert_close(upfirdn2d(x64, f.double(), impl="cuda"), upfirdn2d_reference(x64, f.double()))
    torch.testing.assert_close(bias_act(x64, None, act="lrelu", impl="cuda"), bias_act_reference(x64, None, act="lrelu"))


@cuda
def test_cuda_64bit_indexing(kernels):
    """More than 2^30 elements takes the 64-bit index path (fp16, ~2 GiB per tensor)."""
    free, _ = torch.cuda.mem_get_info()
    if free < 12 * 2 ** 30:
        pytest.skip("needs ~12 GiB of free GPU memory")
    x = torch.randn(1, 4, 16384, 16400, device="cuda", dtype=torch.float16)
    b = torch.randn(4, device="cuda", dtype=torch.float16)
    y = bias_act(x, b, act="lrelu", impl="cuda")
    tail = (slice(None), slice(None), slice(-3, None))
    assert_matches(y[tail], bias_act_reference(x[tail].double(), b.double(), act="lrelu"), torch.float16, "bias_act tail")
    del y
    xs = x[:, :, :8200, :8200]
    f = setup_filter([1, 3, 3, 1], device="cuda")
    y = upsample2d(xs, f, impl="cuda")
    assert y.shape == (1, 4, 16400, 16400)
    # corners of the output depend only on nearby input pixels (and the same border)
    want = upsample2d(xs[:, :, -6:, -6:].double(), f.double(), impl="ref")[:, :, -2:, -2:]
    assert_matches(y[:, :, -2:, -2:], want, torch.float16, "upsample last corner")
    want = upsample2d(xs[:, :, :6, :6].double(), f.double(), impl="ref")[:, :, :2, :2]
    assert_matches(y[:, :, :2, :2], want, torch.float16, "upsample first corner")
