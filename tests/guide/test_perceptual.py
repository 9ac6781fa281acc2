"""LPIPS-VGG16 built from local weight files: loading, missing-file error, gradients, eval pinning."""
import pytest
import torch
from torch import nn

from guide.errors import GuideError
from guide.perceptual import PerceptualLoss, VGG16_FILE, lpips_heads_file, lpips_vgg


def _vgg16_features():
    """torchvision's VGG16 feature stack (random init): same layer indices as the official file."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    return make_layers(cfgs["D"])


@pytest.fixture(scope="module")
def random_lpips():
    return lpips_vgg(random_backbone=True)


def test_missing_vgg16_file_names_it(tmp_path):
    with pytest.raises(GuideError) as info:
        lpips_vgg(checkpoint_dir=tmp_path)
    msg = info.value.one_line()
    assert VGG16_FILE in msg and "LPIPS" in msg and "download.pytorch.org" in msg and str(tmp_path) in msg
    with pytest.raises(GuideError, match=VGG16_FILE):
        lpips_vgg(tmp_path / VGG16_FILE)
    with pytest.raises(ValueError):
        lpips_vgg(tmp_path / VGG16_FILE, random_backbone=True)


def test_vgg16_file_loads_into_lpips_slices(tmp_path):
    """features.<i>.* (torchvision names, DataParallel prefix, classifier ignored) land in
    lpips' slice<k>.<i>.*; the trunk then computes exactly torchvision's feature stack."""
    feats = _vgg16_features()
    state = {f"module.features.{k}": v for k, v in feats.state_dict().items()}
    state["module.classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    path = tmp_path / VGG16_FILE
    torch.save(state, path)
    loss = lpips_vgg(checkpoint_dir=tmp_path)
    trunk = loss.lpips.net
    assert torch.equal(getattr(trunk.slice1, "0").weight, feats[0].weight)
    assert torch.equal(getattr(trunk.slice5, "28").bias, feats[28].bias)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(trunk(x).relu5_3, feats[:30](x), rtol=0, atol=0)
    heads = torch.load(lpips_heads_file(), map_location="cpu", weights_only=True)
    assert torch.equal(loss.lpips.lin0.model[1].weight, heads["lin0.model.1.weight"])


def test_wrong_vgg_file_is_rejected(tmp_path):
    feats = _vgg16_features().state_dict()
    bad = {f"features.{k}": v for k, v in feats.items() if k != "28.weight"}
    torch.save(bad, tmp_path / VGG16_FILE)
    with pytest.raises(GuideError, match="slice5.28.weight"):
        lpips_vgg(checkpoint_dir=tmp_path)


def test_distance_shape_zero_and_gradients(random_lpips):
    torch.manual_seed(0)
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    y = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    d = random_lpips(x, y)
    assert d.shape == (2,) and (d > 0).all()
    assert random_lpips(x, x).abs().max().item() < 1e-6
    d.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    assert y.grad is not None and y.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in random_lpips.parameters())


def test_stays_eval_under_train(random_lpips):
    parent = nn.ModuleDict({"gen": nn.Conv2d(3, 3, 1), "lpips": random_lpips}).train()
    assert isinstance(parent["lpips"], PerceptualLoss) and parent["lpips"].training
    assert all(not m.training for m in random_lpips.lpips.modules())  # head dropout stays off
    x, y = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    assert torch.equal(random_lpips(x, y), random_lpips(x, y))
