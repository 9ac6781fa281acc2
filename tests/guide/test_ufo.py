"""UFO targets."""
import pytest
import torch

from guide.ufo import average_target, extrapolated_target, ufo_target


def test_extrapolated_target_formula_uses_whole_tensor_norm():
    g = torch.Generator().manual_seed(0)
    w_avg = torch.randn(1, 14, 512, generator=g)
    w_u = w_avg + torch.randn(1, 14, 512, generator=g)
    w_t = extrapolated_target(w_u, w_avg, 30.0)
    offset = (w_u - w_avg).double()
    expected = w_avg.double() - offset / offset.norm() * 30
    assert torch.allclose(w_t.double(), expected, atol=1e-5)
    assert abs((w_t - w_avg).norm().item() - 30) < 1e-3  # exactly d away from the mean
    cos = torch.nn.functional.cosine_similarity((w_t - w_avg).flatten(), (w_u - w_avg).flatten(), dim=0)
    assert cos.item() == pytest.approx(-1, abs=1e-6)  # opposite direction


def test_average_and_dispatch():
    w_avg = torch.randn(1, 14, 512)
    w_u = torch.randn(1, 14, 512)
    assert torch.equal(average_target(w_u, w_avg), w_avg)
    assert torch.equal(ufo_target("average", w_u, w_avg), w_avg)
    with pytest.raises(ValueError, match="unknown UFO target"):
        ufo_target("nope", w_u, w_avg)
    with pytest.raises(ValueError, match="no direction"):
        extrapolated_target(w_avg.clone(), w_avg)
