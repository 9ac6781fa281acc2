"""Number-for-number parity of `goae.GOAEncoder` with GUIDE's upstream encoder.

Reference numbers: ../shared/fixtures/goae (upstream GUIDE code run on a CPU in float32, eval
mode, weights from ../shared/parity/fill.py with seed 0, batch of two aligned faces).

* `parity_seed0.pt`: the fill overwrites every float buffer too (coordinate tables and masks).
* `parity_seed0_derivedbuffers.pt`: same draws, but `*.relative_coords_table` and `*.attn_mask`
  hold the values the constructor computes; this is the file that exercises the real
  shifted-window mask and continuous position bias.

Tolerances (max |ours - reference|). The README measured the reference's own float32 rounding
noise: 3.9e-6 on `w` and <= 3.2e-6 on the Swin features against a float64 run, 2.4e-6 between
1 and 2 threads. A faithful implementation rounds differently (BLAS kernels, thread count), so
we allow about 7x that floor, as the README suggests: 3e-5 on `w` / `ws_base`, 2e-5 on features.
The float64 run must match the float64 reference to 1e-10: with float32 rounding out of the
way, only a real difference in the computation would show (measured: 1.7e-14).
The cheapest single change the README lists (LayerNorm eps 1e-6) moves `w` by 1.6e-4, above
these bounds.

Everything shares one module-scoped run: build, fill, then forwards of the batch (float32 main,
float64 item 0, float32 with constructor buffers).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import goae

pytestmark = pytest.mark.slow

TOL_OUT = 3e-5
TOL_FEAT = 2e-5
TOL_FP64 = 1e-10
FEATURES = ("base", "query", "coarse", "mid", "fine")
DERIVED = (".relative_coords_table", ".attn_mask")


def _max_diff(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert tuple(ours.shape) == tuple(ref.shape), f"shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    return (ours.double() - ref.double()).abs().max().item()


def _item_stats(t: torch.Tensor) -> torch.Tensor:
    """Per batch item, in float64: mean, std, min, max, mean |x| (the fixtures' columns)."""
    flat = t.double().reshape(t.shape[0], -1)
    return torch.stack([flat.mean(1), flat.std(1), flat.amin(1), flat.amax(1), flat.abs().mean(1)], dim=1)


@pytest.fixture(scope="module")
def references(goae_fixtures) -> dict:
    return {name: torch.load(goae_fixtures / f"{name}.pt", weights_only=True)
            for name in ("parity_seed0", "parity_seed0_derivedbuffers")}


@pytest.fixture(scope="module")
def run(references, fill_module) -> SimpleNamespace:
    model = goae.GOAEncoder()
    constructed = {k: v.clone() for k, v in model.state_dict().items() if k.endswith(DERIVED)}
    fill_module(model, seed=0)
    x = references["parity_seed0"]["inputs"]
    features = {}
    hook = model.swin_model.register_forward_hook(lambda module, args, out: features.update(last=out))
    out = SimpleNamespace(model=model, inputs=x)
    with torch.no_grad():
        out.main, out.main_features = model(x), features["last"]
        model.double()
        out.fp64_item0 = model(x[:1].double())
        model.float()  # float32 -> float64 -> float32 is exact
        model.load_state_dict(constructed, strict=False)
        out.derived, out.derived_features = model(x), features["last"]
    hook.remove()
    return out


@pytest.mark.parametrize("variant", ["parity_seed0", "parity_seed0_derivedbuffers"])
def test_outputs(run, references, variant):
    ref = references[variant]
    ws, ws_base = run.main if variant == "parity_seed0" else run.derived
    assert ws.dtype == ws_base.dtype == torch.float32
    assert _max_diff(ws, ref["w"]) <= TOL_OUT
    assert _max_diff(ws_base, ref["ws_base"]) <= TOL_OUT
    if "w_item_stats" in ref:  # main file only
        assert _max_diff(_item_stats(ws), ref["w_item_stats"]) <= TOL_OUT
        assert _max_diff(_item_stats(ws_base), ref["ws_base_item_stats"]) <= TOL_OUT


@pytest.mark.parametrize("variant", ["parity_seed0", "parity_seed0_derivedbuffers"])
@pytest.mark.parametrize("name", FEATURES)
def test_swin_features(run, references, variant, name):
    """The five backbone outputs: item 0 in full where stored, strided probes and per-item
    statistics (mean, std, min, max, mean |x|) for every item."""
    ref = references[variant]
    feats = run.main_features if variant == "parity_seed0" else run.derived_features
    f = getattr(feats, name)
    if f"x_{name}_shape" in ref:
        assert list(f.shape) == [int(n) for n in ref[f"x_{name}_shape"].split(",")]
    if f"x_{name}_item0" in ref:
        assert _max_diff(f[:1], ref[f"x_{name}_item0"]) <= TOL_FEAT
    assert _max_diff(f.reshape(f.shape[0], -1)[:, ::509], ref[f"x_{name}_probe"]) <= TOL_FEAT
    assert _max_diff(_item_stats(f), ref[f"x_{name}_item_stats"]) <= TOL_FEAT


def test_float64_matches_float64_reference(run, references):
    ws = run.fp64_item0[0]
    assert ws.dtype == torch.float64
    assert _max_diff(ws, references["parity_seed0"]["w_fp64_reference"][:1]) <= TOL_FP64


def test_train_mode_is_deterministic(run):
    """GUIDE runs its encoder in train mode (live DropPath and dropout, so a random inversion).
    Ours has no stochastic layers by default: train mode gives the eval result bit for bit."""
    model = run.model
    try:
        model.train()
        with torch.no_grad():
            ws, ws_base = model(run.inputs)
    finally:
        model.eval()
    assert torch.equal(ws, run.derived[0]) and torch.equal(ws_base, run.derived[1])
