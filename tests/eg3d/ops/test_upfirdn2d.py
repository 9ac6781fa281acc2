"""upfirdn2d_reference against a naive, loop-based formula (CPU, float64)."""
import itertools

import pytest
import torch

from eg3d.ops.upfirdn2d import (
    downsample2d,
    filter2d,
    parse_padding,
    setup_filter,
    upfirdn2d,
    upfirdn2d_reference,
    upsample2d,
)


def naive_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1.0):
    """The textbook definition, one step at a time, with explicit loops.

    1. upsample: put x[i, j] at (i*up_y, j*up_x) of a zero image of size (H*up_y, W*up_x);
    2. pad with zeros (positive padding) or crop (negative padding);
    3. true 2-D convolution with f (or correlation if flip_filter), 'valid' region, times gain;
    4. keep every down-th pixel, starting at 0.
    A 1-D filter is separable: the 2-D filter is its outer product.
    """
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    px0, px1, py0, py1 = parse_padding(padding)
    x = x.to(torch.float64)
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float64)
    f = f.to(torch.float64)
    if f.ndim == 1:
        f = torch.outer(f, f)
    fh, fw = f.shape
    n, c, h, w = x.shape

    # 1. zero insertion
    hu, wu = h * upy, w * upx
    u = torch.zeros(n, c, hu, wu, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            u[:, :, i * upy, j * upx] = x[:, :, i, j]

    # 2. explicit pad / crop: padded pixel (i, j) is upsampled pixel (i - py0, j - px0)
    hp, wp = hu + py0 + py1, wu + px0 + px1
    p = torch.zeros(n, c, hp, wp, dtype=torch.float64)
    for i in range(hp):
        for j in range(wp):
            si, sj = i - py0, j - px0
            if 0 <= si < hu and 0 <= sj < wu:
                p[:, :, i, j] = u[:, :, si, sj]

    # 3. direct convolution sum: out[a, b] = sum_{k, l} p[a + k, b + l] * kernel[k, l]
    # where kernel is f flipped in both axes (true convolution) unless flip_filter.
    ho, wo = hp - fh + 1, wp - fw + 1
    out = torch.zeros(n, c, ho, wo, dtype=torch.float64)
    for a in range(ho):
        for b in range(wo):
            acc = torch.zeros(n, c, dtype=torch.float64)
            for k in range(fh):
                for l in range(fw):
                    tap = f[k, l] if flip_filter else f[fh - 1 - k, fw - 1 - l]
                    acc += p[:, :, a + k, b + l] * tap
            out[:, :, a, b] = acc * gain

    # 4. strided downsample
    return out[:, :, ::downy, ::downx]


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


NONSYM_3x5 = _rand(3, 5, seed=11)  # non-square, non-symmetric
NONSYM_4x2 = _rand(4, 2, seed=12)
SEPARABLE = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8

CASES = [
    # (name, f, up, down, padding, flip_filter, gain)
    ("identity", None, 1, 1, 0, False, 1.0),
    ("filter-only", NONSYM_3x5, 1, 1, 0, False, 1.0),
    ("filter-pad", NONSYM_3x5, 1, 1, [2, 1, 3, 0], False, 1.0),
    ("up2", NONSYM_4x2, 2, 1, [1, 2, 2, 1], False, 4.0),
    ("down2", NONSYM_3x5, 1, 2, [1, 1, 2, 2], False, 1.0),
    ("up2-down3", NONSYM_3x5, 2, 3, [2, 2, 1, 1], False, 1.0),
    ("anisotropic", NONSYM_4x2, (2, 3), (3, 1), [1, 0, 2, 3], False, 0.5),
    ("negative-pad", NONSYM_3x5, 1, 1, [-1, -2, 0, 1], False, 1.0),
    ("up-negative-pad", NONSYM_4x2, 3, 1, [-2, 1, -1, -3], False, 1.0),
    ("down-negative-pad", NONSYM_4x2, 1, 2, [-1, -1, 1, -2], False, 2.0),
    ("flip", NONSYM_3x5, 2, 2, [1, 2, 3, 4], True, 3.0),
    ("separable-up", SEPARABLE, 2, 1, [2, 1, 2, 1], False, 4.0),
    ("separable-down-flip", SEPARABLE, 1, 2, [1, 1, 1, 1], True, 1.5),
    ("none-up", None, 2, 1, 0, False, 1.0),
    ("pad-int", NONSYM_4x2, 1, 1, 2, False, 1.0),
    ("pad-pair", NONSYM_4x2, 2, 2, [3, 1], False, 1.0),
]


@pytest.mark.parametrize("name,f,up,down,padding,flip_filter,gain", CASES, ids=[c[0] for c in CASES])
def test_reference_matches_naive(name, f, up, down, padding, flip_filter, gain):
    x = _rand(2, 3, 7, 9, seed=1)
    ref = upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    naive = naive_upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    assert ref.shape == naive.shape
    torch.testing.assert_close(ref, naive, rtol=1e-12, atol=1e-12)


def test_public_function_on_cpu_is_reference():
    x = _rand(1, 2, 6, 4, seed=2)
    f = setup_filter([1, 3, 3, 1])
    for impl in ("auto", "ref"):
        out = upfirdn2d(x, f.double(), up=2, padding=[2, 1, 2, 1], gain=4, impl=impl)
        torch.testing.assert_close(out, upfirdn2d_reference(x, f.double(), up=2, padding=[2, 1, 2, 1], gain=4))


def test_separable_equals_outer_product():
    x = _rand(2, 2, 7, 5, seed=3)
    fs = setup_filter([1, 3, 3, 1], separable=True).double()
    f2 = setup_filter([1, 3, 3, 1], separable=False).double()
    assert fs.ndim == 1 and f2.ndim == 2
    for kwargs in (dict(up=2, padding=[2, 1, 2, 1], gain=4), dict(down=2, padding=1), dict(padding=[1, 2, 2, 1])):
        torch.testing.assert_close(upfirdn2d_reference(x, fs, **kwargs), upfirdn2d_reference(x, f2, **kwargs))


def test_setup_filter():
    f = setup_filter([1, 2, 1])
    assert f.shape == (3, 3) and f.dtype == torch.float32
    torch.testing.assert_close(f.sum(), torch.tensor(1.0))
    torch.testing.assert_close(f, torch.outer(torch.tensor([1.0, 2, 1]), torch.tensor([1.0, 2, 1])) / 16)
    # 8+ taps default to separable
    assert setup_filter([1] * 8).ndim == 1
    # gain applies once overall: gain**(ndim/2) per tensor
    torch.testing.assert_close(setup_filter([1, 2, 1], gain=4).sum(), torch.tensor(4.0))
    torch.testing.assert_close(setup_filter([1] * 8, gain=4).sum(), torch.tensor(2.0))
    # flip
    g = setup_filter([[1, 2], [3, 4]], normalize=False, flip_filter=True)
    torch.testing.assert_close(g, torch.tensor([[4.0, 3], [2, 1]]))
    # None is the 1x1 identity (as [1] -> outer product [[1]])
    torch.testing.assert_close(setup_filter(None), torch.ones(1, 1))


@pytest.mark.parametrize("ft", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("hw", [(8, 8), (7, 10), (9, 5)])
def test_resample_output_sizes(ft, hw):
    h, w = hw
    x = _rand(1, 2, h, w, seed=4)
    f2 = setup_filter([1.0] * ft, separable=False).double()
    fs = setup_filter([1.0] * ft, separable=True).double()
    for f in (f2, fs):
        assert upsample2d(x, f, up=2).shape == (1, 2, 2 * h, 2 * w)
        assert upsample2d(x, f, up=(3, 2)).shape == (1, 2, 2 * h, 3 * w)
        assert downsample2d(x, f, down=2).shape == (1, 2, h // 2, w // 2)
        assert downsample2d(x, f, down=(2, 3)).shape == (1, 2, h // 3, w // 2)
        assert filter2d(x, f).shape == (1, 2, h, w)
        assert filter2d(x, f, padding=1).shape == (1, 2, h + 2, w + 2)
        assert upsample2d(x, f, up=2, padding=[1, 0, 2, 1]).shape == (1, 2, 2 * h + 3, 2 * w + 1)


def test_resample_values_against_naive():
    x = _rand(1, 2, 6, 5, seed=5)
    f = setup_filter([1, 3, 3, 1]).double()
    # upsample2d: gain up^2, padding ((fw+up-1)//2, (fw-up)//2) = (2, 1)
    torch.testing.assert_close(upsample2d(x, f, up=2), naive_upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4))
    torch.testing.assert_close(downsample2d(x, f, down=2), naive_upfirdn2d(x, f, down=2, padding=[1, 1, 1, 1]))
    torch.testing.assert_close(filter2d(x, f), naive_upfirdn2d(x, f, padding=[2, 1, 2, 1]))
    # constant images stay constant away from the border (normalised filters, gain compensation)
    ones = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(upsample2d(ones, f)[..., 3:-3, 3:-3], torch.ones(1, 1, 10, 10, dtype=torch.float64))
    torch.testing.assert_close(downsample2d(ones, f)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2, dtype=torch.float64))


def test_errors():
    with pytest.raises(ValueError):
        upfirdn2d_reference(torch.zeros(2, 3, 4), None)
    with pytest.raises(ValueError):
        parse_padding([1, 2, 3])
    with pytest.raises(ValueError):
        upfirdn2d_reference(torch.zeros(1, 1, 4, 4), None, up=(1, 2, 3))


GRAD_CASES = [
    (NONSYM_4x2, 2, 1, [1, 2, 0, 1], False, 2.0),
    (NONSYM_3x5, 1, 2, [2, 1, 1, 2], True, 1.0),
    (NONSYM_3x5, (2, 1), (1, 3), [-1, 2, 1, -1], False, 1.0),
    (SEPARABLE, 2, 2, [2, 1, 2, 1], False, 4.0),
]


@pytest.mark.parametrize("f,up,down,padding,flip_filter,gain", GRAD_CASES)
def test_reference_gradcheck(f, up, down, padding, flip_filter, gain):
    x = _rand(1, 2, 4, 5, seed=6).requires_grad_(True)
    ff = f.clone().requires_grad_(True)
    fn = lambda x, ff: upfirdn2d_reference(x, ff, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    assert torch.autograd.gradcheck(fn, (x, ff), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradgradcheck(fn, (x, ff), eps=1e-6, atol=1e-8)


def test_combinatorial_small_sweep():
    """Many small (up, down, pad) combinations against the naive formula."""
    x = _rand(1, 1, 3, 4, seed=7)
    f = _rand(2, 3, seed=8)
    for up, down, p0, p1 in itertools.product([1, 2, 3], [1, 2, 3], [-1, 0, 2], [-2, 0, 1]):
        pad = [p0, p1, p1, p0]
        if 4 * up + p0 + p1 - 3 + 1 <= 0 or 3 * up + p1 + p0 - 2 + 1 <= 0:
            continue  # empty output
        ref = upfirdn2d_reference(x, f, up=up, down=down, padding=pad)
        naive = naive_upfirdn2d(x, f, up=up, down=down, padding=pad)
        torch.testing.assert_close(ref, naive, rtol=1e-12, atol=1e-12, msg=f"up={up} down={down} pad={pad}")
