"""GOAEncoder structure, derived tables, determinism, dtype flow and checkpoint loading.

Fast tests: the full-size encoder is only built on the meta device (no memory, no numbers);
behaviour is checked on a tiny configuration with the same code paths.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

import goae
from goae.swin import SwinBlock, relative_coords_table, relative_position_index, shifted_window_mask

from .conftest import randomize, tiny_config

# CUDA float32 (TF32 off) against a CPU float64 run; CPU float32 is ~4e-6 off float64 (see
# test_parity.py), a GPU's different reduction orders get the same 7x allowance as CPU parity.
CUDA_TOL = 3e-5


def _meta_encoder(config: goae.GOAEConfig | None = None) -> goae.GOAEncoder:
    with torch.device("meta"):
        return goae.GOAEncoder(config)


def _tiny(stochastic: bool = False, seed: int = 0) -> goae.GOAEncoder:
    return randomize(goae.GOAEncoder(tiny_config(stochastic)), seed)


def _images(n: int = 2, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- layout and configuration


def test_state_dict_layout_matches_upstream(manifest):
    """Keys in upstream order, shapes, dtypes and parameter/buffer kinds, exactly."""
    model = _meta_encoder()
    params = {name for name, _ in model.named_parameters()}
    ours = [
        {"key": k, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."),
         "kind": "parameter" if k in params else "buffer"}
        for k, t in model.state_dict().items()
    ]
    ref = [{k: e[k] for k in ("key", "shape", "dtype", "kind")} for e in manifest["state_dict"]]
    assert [e["key"] for e in ours] == [e["key"] for e in ref], "keys or their order differ"
    assert ours == ref
    assert len(ours) == manifest["num_state_dict_keys"]
    assert len(params) == manifest["num_parameter_tensors"]
    assert sum(p.numel() for p in model.parameters()) == manifest["total_parameters"]
    assert sum(b.numel() for b in model.buffers()) == manifest["total_buffer_elements"]
    for name, count in manifest["parameters_by_top_level_module"].items():
        sub = getattr(model, name, None)
        got = 0 if sub is None else sum(p.numel() for p in sub.parameters())
        assert got == count, name


def test_default_is_guides_configuration(manifest):
    """`GOAEncoder()` is GUIDE's build: swinv2.yaml settings, per-block windows, shifts, masks
    and (with `stochastic=True`) the drop-path schedule."""
    ref = manifest["swin_config"]
    swin = goae.GOAEConfig().swin
    for field in ("img_size", "patch_size", "in_chans", "embed_dim", "window_size", "mlp_ratio", "qkv_bias",
                  "drop_rate", "attn_drop_rate", "drop_path_rate"):
        assert getattr(swin, field) == ref[field], field
    for field in ("depths", "num_heads", "pretrained_window_sizes"):
        assert list(getattr(swin, field)) == ref[field], field
    head = manifest["encoder_head"]
    config = goae.GOAEConfig()
    assert (config.mlp_layer, config.num_ws) == (head["mlp_layer"], head["ws_dim"])

    model = _meta_encoder(dataclasses.replace(config, stochastic=True))
    for layer, ref_layer in zip(model.swin_model.layers, ref["layers"]):
        assert layer.blocks[0].norm1.normalized_shape == (ref_layer["dim"],)
        assert len(layer.blocks) == len(ref_layer["blocks"])
        for block, ref_block in zip(layer.blocks, ref_layer["blocks"]):
            assert block.resolution == tuple(ref_layer["input_resolution"])
            assert (block.window, block.shift) == (ref_block["window_size"], ref_block["shift_size"])
            assert (block.attn_mask is not None) == ref_block["has_attn_mask_buffer"]
            assert list(block.attn.relative_coords_table.shape) == ref_block["relative_coords_table_shape"]
            rate = getattr(block.drop_path, "p", 0.0)
            assert rate == pytest.approx(ref_block["drop_path"], abs=1e-7)


def test_default_encoder_has_no_stochastic_layers():
    model = _meta_encoder()
    kinds = {type(m).__name__ for m in model.modules()}
    assert not kinds & {"Dropout", "DropPath"}
    assert all(m.multihead_attn.dropout == 0.0 for m in (model.cross_att_coarse, model.cross_att_mid,
                                                          model.cross_att_fine))
    assert not model.training, "the encoder is returned in eval mode"


# ----------------------------------------------------------------------------- derived tables


def test_relative_coords_tables_match_upstream_bitwise(goae_fixtures):
    ref = torch.load(goae_fixtures / "parity_seed0_derivedbuffers.pt", weights_only=True)
    assert torch.equal(relative_coords_table((16, 16), (12, 12)), ref["relative_coords_table_win16_pre12"])
    assert torch.equal(relative_coords_table((8, 8), (6, 6)), ref["relative_coords_table_win8_pre6"])


def test_relative_position_index():
    index = relative_position_index((4, 3))
    n = torch.arange(12)
    rows, cols = n // 3, n % 3
    dh = rows[:, None] - rows[None, :]  # query row - key row
    dw = cols[:, None] - cols[None, :]
    assert index.dtype == torch.int64
    assert torch.equal(index, (dh + 3) * 5 + (dw + 2))


def test_shifted_window_mask():
    mask = shifted_window_mask((64, 64), 16, 8)
    assert mask.shape == (16, 256, 256) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    # label each token of the rolled grid by its 3x3 region: [0, 48), [48, 56), [56, 64) per axis
    region = torch.bucketize(torch.arange(64), torch.tensor([48, 56]), right=True)
    labels = (3 * region[:, None] + region[None, :]).view(4, 16, 4, 16).permute(0, 2, 1, 3).reshape(16, 256)
    assert torch.equal(mask == 0, labels[:, :, None] == labels[:, None, :])
    assert (mask[0] == 0).all() and (mask[-1] != 0).any()


def test_model_buffers_are_the_constructor_tables():
    block = _tiny().swin_model.layers[0].blocks[1]
    assert isinstance(block, SwinBlock) and block.shift == 2
    assert torch.equal(block.attn_mask, shifted_window_mask((16, 16), 4, 2))
    assert torch.equal(block.attn.relative_coords_table, relative_coords_table((4, 4), (3, 3)))
    assert torch.equal(block.attn.relative_position_index, relative_position_index((4, 4)))


# ----------------------------------------------------------------------------- forward behaviour


@torch.no_grad()
def test_forward_shapes_and_rows():
    model = _tiny()
    ws, ws_base = model(_images(3))
    assert ws.shape == ws_base.shape == (3, 14, 16)
    assert torch.equal(ws_base, ws_base[:, :1].expand_as(ws_base))
    assert torch.equal(ws[:, 0], ws_base[:, 0]), "row 0 is the base code alone"
    assert torch.isfinite(ws).all()


@torch.no_grad()
def test_deterministic_in_every_mode():
    """Default build: no stochastic layers, so repeated calls and train mode give identical results."""
    model, x = _tiny(), _images()
    ref = model(x)
    again = model(x)
    model.train()
    trained = model(x)
    for a, b, c in zip(ref, again, trained):
        assert torch.equal(a, b) and torch.equal(a, c)


@torch.no_grad()
def test_stochastic_build_reproduces_upstream_train_mode_randomness():
    """`stochastic=True` + `.train()`: live DropPath/dropout driven by the global RNG (as upstream);
    eval mode stays deterministic and equals the default build's output."""
    x = _images()
    deterministic = _tiny()(x)[0]
    model = _tiny(stochastic=True)
    assert torch.equal(model(x)[0], deterministic)
    model.train()
    torch.manual_seed(3)
    first = model(x)[0]
    torch.manual_seed(3)
    assert torch.equal(model(x)[0], first)
    assert not torch.equal(model(x)[0], first)
    assert not torch.equal(first, deterministic)


@torch.no_grad()
def test_dtype_follows_module_and_input():
    model, x = _tiny(), _images()
    ws32 = model(x)[0]
    ws64 = model.double()(x.double())[0]
    assert ws64.dtype == torch.float64
    torch.testing.assert_close(ws64.float(), ws32, rtol=1e-4, atol=1e-4)


def test_rejects_wrong_input_shape():
    model = _tiny()
    with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\]"):
        model(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError):
        model(torch.zeros(3, 32, 32))


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture()
def saved(tmp_path):
    model = _tiny()
    path = tmp_path / "encoder.pt"
    torch.save(model.state_dict(), path)
    return model, path


@torch.no_grad()
def test_from_checkpoint_round_trip(saved):
    model, path = saved
    loaded = goae.GOAEncoder.from_checkpoint(path, device="cpu", config=tiny_config())
    assert not loaded.training
    assert all(t.device.type == "cpu" for t in loaded.state_dict().values())
    x = _images()
    for a, b in zip(model(x), loaded(x)):
        assert torch.equal(a, b)


def test_from_checkpoint_uses_stored_tables(saved, tmp_path):
    """Like upstream's load_state_dict, the file's attention tables win over recomputed ones."""
    model, _ = saved
    state = model.state_dict()
    key = "swin_model.layers.0.blocks.1.attn_mask"
    state[key] = torch.full_like(state[key], -1.0)
    torch.save(state, tmp_path / "edited.pt")
    loaded = goae.GOAEncoder.from_checkpoint(tmp_path / "edited.pt", config=tiny_config())
    assert (loaded.state_dict()[key] == -1.0).all()


@pytest.mark.parametrize("edit, pattern", [
    (lambda s: s.pop("swin_model.norm.weight"), r"1 missing key\(s\): swin_model\.norm\.weight"),
    (lambda s: s.update({"extra.weight": torch.zeros(1)}), r"1 unexpected key\(s\): extra\.weight"),
    (lambda s: s.update({"mapper_base_channel.0.bias": torch.zeros(3)}), r"shape mismatch.*mapper_base_channel\.0\.bias"),
    (lambda s: [s.pop(k) for k in [k for k in s if "attn_mask" in k]], r"2 missing key\(s\): .*attn_mask"),
])
def test_from_checkpoint_names_mismatched_keys(saved, tmp_path, edit, pattern):
    model, _ = saved
    state = model.state_dict()
    edit(state)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=pattern):
        goae.GOAEncoder.from_checkpoint(tmp_path / "bad.pt", config=tiny_config())


def test_from_checkpoint_lists_only_the_first_few_keys(saved, tmp_path):
    model, _ = saved
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("swin_model.layers.0")}
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"missing key\(s\): .*\(\+\d+ more\)") as err:
        goae.GOAEncoder.from_checkpoint(tmp_path / "bad.pt", config=tiny_config())
    assert str(err.value).count("swin_model.layers.0") == 5


@pytest.mark.parametrize("keep", [0.5, 0.995, 10])
def test_from_checkpoint_rejects_truncated_files(saved, tmp_path, keep):
    _, path = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        goae.GOAEncoder.from_checkpoint(cut, config=tiny_config())


def test_from_checkpoint_rejects_other_content(tmp_path):
    torch.save({"model": {"a": torch.zeros(1)}}, tmp_path / "nested.pt")
    with pytest.raises(ValueError, match="not a flat state_dict"):
        goae.GOAEncoder.from_checkpoint(tmp_path / "nested.pt", config=tiny_config())
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a state_dict"):
        goae.GOAEncoder.from_checkpoint(tmp_path / "list.pt", config=tiny_config())
    with pytest.raises(FileNotFoundError):
        goae.GOAEncoder.from_checkpoint(tmp_path / "absent.pt")


# ----------------------------------------------------------------------------- devices


@pytest.mark.cuda
@torch.no_grad()
def test_cuda_forward_matches_cpu_float64():
    """The full encoder runs on CUDA (upstream builds a constant on "cuda" and so fails on CPU;
    ours takes the device from its input) and matches a CPU float64 run of the same weights.
    TF32 is off: with it, cuDNN's patch-embedding conv alone would exceed the bound."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = randomize(goae.GOAEncoder(), seed=0)
    x = _images(2, 256)
    ref = model.double()(x.double())
    model.float().cuda()
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        out = model(x.cuda())
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    for ours, expected in zip(out, ref):
        assert ours.device.type == "cuda" and ours.dtype == torch.float32
        assert (ours.double().cpu() - expected).abs().max().item() <= CUDA_TOL
