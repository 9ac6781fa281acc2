"""guide.evaluate.pipeline with small injected networks: eval all without real statistics."""
import json

import pytest

from guide.evaluate.cache import FeatureCache
from guide.evaluate.identity import IdentityScorer, Others
from guide.evaluate.pipeline import EvalNetworks, eval_all
from guide.identity import IDSimilarity

from ..conftest import TinyEmbedder
from .test_fid import PooledFeatures


@pytest.fixture
def small_networks(tmp_path):
    """Tiny identity and feature networks (the real ones are tested elsewhere); an empty checkpoints folder."""
    features = PooledFeatures(16)
    features.dims = 16
    return EvalNetworks(tmp_path / "no-checkpoints", "cpu", scorer=IdentityScorer(IDSimilarity(TinyEmbedder())),
                        inception=features)


def test_eval_all_without_real_statistics_computes_the_other_three(erase_output, small_networks, tmp_path):
    metrics, report = eval_all(erase_output, small_networks, others=Others("none"), num=4, batch=2,
                               cache=FeatureCache(None), progress=False)
    assert isinstance(metrics["ID"], float) and isinstance(metrics["FID_pre"], float)
    assert metrics["delta_FID_real"] is None
    note = metrics["delta_FID_real_note"]
    assert "--real" in note and "ffhq_real_feat.npy" in note and "\n" not in note
    saved = json.loads((erase_output / "metrics.json").read_text())
    assert saved["delta_FID_real_note"] == note and saved["published"]["scenario"] == "Random"
    assert "delta_FID_real was not computed: ΔFID_real needs real statistics" in report.read_text()
    assert metrics["fid"]["settings"]["sampling"] == "paper"  # the paper protocol is the default
