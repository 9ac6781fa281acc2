"""pytorch-fid's Inception built without downloads, loaded from the checkpoints folder."""
import pytest
import torch

from guide.errors import GuideError
from guide.evaluate.inception import INCEPTION_FILE, InceptionFeatures, inception_features


@pytest.fixture
def no_downloads(monkeypatch):
    """Any attempt to fetch weights fails the test."""
    import pytorch_fid.inception as pf
    import torch.hub

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(pf, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    return refuse


def test_quantisation_matches_the_reference_png_round_trip():
    x = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.3, 0.999, 1.0, 2.0]).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    expected = ((x * 127.5 + 128).clamp(0, 255).floor()) / 255
    assert torch.equal(InceptionFeatures.to_unit_range(x), expected)


def test_seeded_random_weights_and_local_file_without_downloads(tmp_path, no_downloads, random_inception):
    """Random weights are seeded; a state_dict file in the checkpoints folder is what the network runs
    with (here: the seed-0 random weights saved to disk); nothing is ever fetched."""
    import pytorch_fid.inception as pf

    inner = {}
    original = pf._inception_v3

    def capture(*args, **kwargs):  # the torchvision network inside pytorch-fid's wrapper
        inner["net"] = original(*args, **kwargs)
        return inner["net"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pf, "_inception_v3", capture)
        again = inception_features(random_weights=True)
    assert pf.load_state_dict_from_url is no_downloads  # our temporary loader was removed again
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    expected = random_inception(images)
    assert expected.shape == (2, 2048) and torch.isfinite(expected).all()
    assert torch.equal(again(images), expected)
    assert random_inception.identifier == "random-inception-seed0"

    torch.save(inner["net"].state_dict(), tmp_path / INCEPTION_FILE)
    loaded = inception_features(tmp_path)
    assert torch.equal(loaded(images), expected)
    assert loaded.identifier.startswith(INCEPTION_FILE + ":")


def test_missing_or_wrong_weights_are_one_line_errors(tmp_path, no_downloads):
    with pytest.raises(GuideError, match=INCEPTION_FILE) as info:
        inception_features(tmp_path)
    assert "\n" not in info.value.one_line()
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / INCEPTION_FILE)
    with pytest.raises(GuideError, match="does not fit"):
        inception_features(tmp_path)
