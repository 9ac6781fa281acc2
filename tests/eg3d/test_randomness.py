"""Draws made ahead of a synthesis call (eg3d.randomness) and the renderer's wait-free bounds."""
import pytest
import torch

import eg3d
from eg3d import configs
from eg3d.randomness import DrawRecorder, DrawReplay, draw_ahead
from eg3d.rendering.renderer import fill_invalid_bounds
from tests.eg3d.test_generator import _camera


@torch.no_grad()
def test_replayed_draws_give_the_same_render_bit_for_bit():
    torch.manual_seed(0)
    G = eg3d.TriPlaneGenerator(**configs.tiny()).eval()
    G.neural_rendering_resolution = 8
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)), _camera(2))
    recorder = DrawRecorder(torch.Generator().manual_seed(5))
    inline = G.synthesis(ws, _camera(2), generator=recorder)["image"]
    kinds = [d.kind for d in recorder.plan]  # backbone noise, then stratified jitter and importance uniforms
    assert kinds.count("normal") == 13 and kinds[-2:] == ["uniform", "uniform"]
    tensors = draw_ahead(recorder.plan, torch.Generator().manual_seed(5), "cpu")
    replay = DrawReplay(tensors, recorder.plan)
    assert torch.equal(G.synthesis(ws, _camera(2), generator=replay)["image"], inline)
    replay.finish()
    with pytest.raises(RuntimeError, match="asked for"):  # a batch of 1 is not the planned call
        G.synthesis(ws[:1], _camera(1), generator=DrawReplay(tensors, recorder.plan))


def test_invalid_ray_bounds_are_filled_like_upstream_without_boolean_indexing():
    g = torch.Generator().manual_seed(0)
    start, end = torch.rand(2, 50, 1, generator=g), torch.rand(2, 50, 1, generator=g)
    valid = end > start
    expected_start, expected_end = start.clone(), end.clone()  # upstream's formula
    expected_start[~valid] = start[valid].min()
    expected_end[~valid] = start[valid].max()
    got_start, got_end = fill_invalid_bounds(start, end)
    assert torch.equal(got_start, expected_start) and torch.equal(got_end, expected_end)
    missing_start, missing_end = start + 1, start - 1  # every ray misses: upstream leaves them alone
    none_valid = fill_invalid_bounds(missing_start, missing_end)
    assert torch.equal(none_valid[0], missing_start) and torch.equal(none_valid[1], missing_end)
