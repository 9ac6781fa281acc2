"""Latents of a batch: erased photos/latents need the w_avg file (w_avg: file); the retain set does not."""
import torch

from guide.batch.latents import resolve_latents, retain_latents
from guide.batch.schema import JobIdentity
from guide.config import EraseConfig


def test_erased_latents_need_the_w_avg_file_retained_ones_do_not(tmp_path, tiny_generator_factory):
    G = tiny_generator_factory()
    torch.save(torch.zeros(1, 14, 512), tmp_path / "w.pt")
    entries = [JobIdentity("a", "latent", str(tmp_path / "w.pt")), JobIdentity("r", "random", 1)]
    w_avg = G.backbone.mapping.w_avg.reshape(1, 1, -1).repeat(1, 14, 1)
    failed = {}
    ok, w_u = resolve_latents(entries, G, EraseConfig(), w_avg, tmp_path, "cpu",
                              lambda e, why: failed.update({e.id: why}))
    assert [e.id for e in ok] == ["r"] and w_u.shape == (1, 14, 512)
    assert "w_avg_ffhqrebalanced512-128.pt" in failed["a"] and "--w-avg mapping" in failed["a"]
    ids, latents, skipped = retain_latents(entries, G, EraseConfig(), w_avg, tmp_path, "cpu")
    assert ids == ["a", "r"] and latents.shape == (2, 14, 512) and not skipped
    mapping = EraseConfig()
    mapping.inversion.w_avg = "mapping"
    ok, _ = resolve_latents(entries, G, mapping, w_avg, tmp_path, "cpu", lambda e, why: failed.update({e.id: why}))
    assert [e.id for e in ok] == ["a", "r"]
