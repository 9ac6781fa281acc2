"""bias_act_reference against naive per-element formulas (CPU, float64)."""
import itertools
import math

import pytest
import torch

from eg3d.ops.bias_act import ACTIVATIONS, bias_act, bias_act_reference

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


NAIVE = {
    "linear": lambda z, a: z,
    "relu": lambda z, a: max(z, 0.0),
    "lrelu": lambda z, a: z if z >= 0 else a * z,
    "tanh": lambda z, a: math.tanh(z),
    "sigmoid": lambda z, a: _sigmoid(z),
    "elu": lambda z, a: z if z > 0 else math.exp(z) - 1.0,
    "selu": lambda z, a: SELU_SCALE * (z if z > 0 else SELU_ALPHA * (math.exp(z) - 1.0)),
    "softplus": lambda z, a: z if z > 20 else math.log1p(math.exp(z)),
    "swish": lambda z, a: z * _sigmoid(z),
}
DEFAULTS = {  # (alpha, gain) as StyleGAN2 defines them
    "linear": (0.0, 1.0),
    "relu": (0.0, math.sqrt(2)),
    "lrelu": (0.2, math.sqrt(2)),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "elu": (0.0, 1.0),
    "selu": (0.0, 1.0),
    "softplus": (0.0, 1.0),
    "swish": (0.0, math.sqrt(2)),
}


def naive_bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None):
    """Element by element: clamp(act(x + b[index along dim]) * gain)."""
    def_alpha, def_gain = DEFAULTS[act]
    alpha = def_alpha if alpha is None else alpha
    gain = def_gain if gain is None else gain
    x = x.to(torch.float64)
    out = torch.empty_like(x)
    dim = dim % x.ndim
    for idx in itertools.product(*[range(s) for s in x.shape]):
        z = float(x[idx])
        if b is not None:
            z += float(b[idx[dim]])
        y = NAIVE[act](z, alpha) * gain
        if clamp is not None and clamp >= 0:
            y = min(max(y, -clamp), clamp)
        out[idx] = y
    return out


def _rand(*shape, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def test_activation_table_matches_stylegan2():
    assert set(ACTIVATIONS) == set(NAIVE)
    for name, (alpha, gain) in DEFAULTS.items():
        spec = ACTIVATIONS[name]
        assert spec.def_alpha == pytest.approx(alpha) and spec.def_gain == pytest.approx(gain), name
    assert sorted(s.cuda_id for s in ACTIVATIONS.values()) == list(range(1, 10))


@pytest.mark.parametrize("act", sorted(NAIVE))
def test_reference_matches_naive_defaults(act):
    x = _rand(2, 3, 4, seed=1)
    b = _rand(3, seed=2)
    torch.testing.assert_close(bias_act_reference(x, b, act=act), naive_bias_act(x, b, act=act), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bias_act_reference(x, act=act), naive_bias_act(x, act=act), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", sorted(NAIVE))
def test_reference_gain_alpha_clamp(act):
    x = _rand(3, 5, seed=3)
    b = _rand(5, seed=4)
    kwargs = dict(act=act, alpha=0.3, gain=1.7, clamp=0.8)
    torch.testing.assert_close(bias_act_reference(x, b, **kwargs), naive_bias_act(x, b, **kwargs), rtol=1e-12, atol=1e-12)
    out = bias_act_reference(x, b, **kwargs)
    assert out.abs().max() <= 0.8
    # clamp=None and negative clamp both mean "no clamping"
    big = _rand(4, 5, seed=5, scale=50.0)
    for clamp in (None, -1):
        torch.testing.assert_close(
            bias_act_reference(big, b, act=act, clamp=clamp), naive_bias_act(big, b, act=act, clamp=None)
        )
    # clamp=0 zeroes everything
    assert bias_act_reference(x, b, act=act, clamp=0).abs().max() == 0


def test_softplus_large_inputs_and_lrelu_alpha():
    x = torch.tensor([[-30.0, -1.0, 0.0, 1.0, 19.0, 25.0, 80.0]], dtype=torch.float64)
    torch.testing.assert_close(bias_act_reference(x, act="softplus"), naive_bias_act(x, act="softplus"))
    torch.testing.assert_close(
        bias_act_reference(x, act="lrelu", alpha=0.1, gain=1), torch.where(x >= 0, x, 0.1 * x)
    )


@pytest.mark.parametrize("shape,dim", [((2, 3, 4, 5), 2), ((2, 3, 4, 5), 3), ((6, 4), 0), ((2, 3, 4, 5), -1), ((7,), 0)])
def test_reference_other_dims(shape, dim):
    x = _rand(*shape, seed=6)
    b = _rand(shape[dim], seed=7)
    torch.testing.assert_close(
        bias_act_reference(x, b, dim=dim, act="lrelu"), naive_bias_act(x, b, dim=dim, act="lrelu"), rtol=1e-12, atol=1e-12
    )


def test_public_function_on_cpu_is_reference():
    x = _rand(2, 4, 3, 3, seed=8)
    b = _rand(4, seed=9)
    for impl in ("auto", "ref"):
        torch.testing.assert_close(bias_act(x, b, act="lrelu", clamp=1.0, impl=impl), bias_act_reference(x, b, act="lrelu", clamp=1.0))


@pytest.mark.parametrize(
    "bshape,dim",
    [((4,), 1), ((3, 1), 1), ((3,), 2), ((), 1), ((3,), 5), ((3,), -5)],
)
def test_bias_shape_errors(bshape, dim):
    x = torch.zeros(2, 3, 5)
    with pytest.raises(ValueError):
        bias_act_reference(x, torch.zeros(bshape), dim=dim)


def test_unknown_activation():
    with pytest.raises(ValueError):
        bias_act_reference(torch.zeros(2, 2), act="gelu")


@pytest.mark.parametrize("act", sorted(NAIVE))
def test_reference_gradcheck(act):
    # Keep away from the kinks (relu/lrelu at 0, the clamp bounds) so finite differences are valid.
    x = _rand(2, 3, 4, seed=10)
    x = torch.where(x.abs() < 0.05, x + 0.1, x).requires_grad_(True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: bias_act_reference(x, b, act=act, gain=1.3, clamp=50.0)
    assert torch.autograd.gradcheck(fn, (x, b), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradgradcheck(fn, (x, b), eps=1e-6, atol=1e-6)


def test_reference_clamp_gradient_is_zero_outside():
    x = torch.tensor([[-3.0, -0.5, 0.5, 3.0]], dtype=torch.float64, requires_grad=True)
    y = bias_act_reference(x, act="linear", clamp=1.0)
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(g, torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=torch.float64))
