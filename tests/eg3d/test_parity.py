"""Number-for-number parity of our EG3D generator with the upstream code.

Reference numbers: ../shared/fixtures/eg3d (computed by running upstream EG3D/GUIDE on CPU,
float32, deterministic sampling). Tolerances are explained in parity_utils.py.
"""
from __future__ import annotations

import pytest
import torch

import eg3d
from eg3d.layers import modulated_conv2d
from eg3d.ops import bias_act, upsample2d
from eg3d.rendering import (
    ImportanceRenderer,
    OSGDecoder,
    RaySampler,
    get_ray_limits_box,
    project_onto_planes,
    sample_from_planes,
)
from eg3d.synthesis import SynthesisBlock

from .parity_utils import LOOSE, TIGHT, assert_close, assert_summary


@pytest.fixture(scope="module")
def tiny(eg3d_fixtures):
    return torch.load(eg3d_fixtures / "tiny_parity.pt", weights_only=True)


@pytest.fixture(scope="module")
def components(tiny):
    return tiny["components"]


# --------------------------------------------------------------------------- components


def _block(weights: dict, in_channels: int, out_channels: int, resolution: int) -> SynthesisBlock:
    block = SynthesisBlock(
        in_channels, out_channels, w_dim=512, resolution=resolution, img_channels=96, is_last=False,
        use_fp16=False, conv_clamp=None, fused_modconv_default="inference_only",
    )
    block.load_state_dict(weights, strict=True)
    return block.eval()


@torch.no_grad()
def test_synthesis_blocks(components):
    comp = components["synthesis_block"]
    b4 = _block(comp["weights_b4"], 0, 8, 4)
    b8 = _block(comp["weights_b8"], 8, 8, 8)
    x, img = b4(None, None, comp["ws_b4"], noise_mode="const")
    assert_close(x, comp["b4_const_x"], what="b4_const_x")
    assert_close(img, comp["b4_const_img"], what="b4_const_img")
    x, _ = b4(None, None, comp["ws_b4"], noise_mode="none")
    assert_close(x, comp["b4_none_x"], what="b4_none_x")
    x, img = b8(comp["x_in_b8"], comp["img_in_b8"], comp["ws_b8"], noise_mode="const")
    assert_close(x, comp["b8_const_x"], what="b8_const_x")
    assert_close(img, comp["b8_const_img"], what="b8_const_img")
    x, _ = b8(comp["x_in_b8"], comp["img_in_b8"], comp["ws_b8"], noise_mode="none")
    assert_close(x, comp["b8_none_x"], what="b8_none_x")
    x, _ = b8(comp["x_in_b8"], comp["img_in_b8"], comp["ws_b8"], noise_mode="const", fused_modconv=False)
    assert_close(x, comp["b8_const_nonfused_x"], what="b8_const_nonfused_x")


@torch.no_grad()
def test_modulated_conv2d(components):
    comp = components["modulated_conv2d"]
    f = comp["resample_filter"]
    for fused in (True, False):
        out = modulated_conv2d(comp["x"], comp["weight3x3"], comp["styles"], noise=comp["noise"], padding=1,
                               resample_filter=f, flip_weight=True, fused_modconv=fused)
        assert_close(out, comp[f"up1_demod_noise_fused{fused}"], what=f"up1 fused={fused}")
        out = modulated_conv2d(comp["x"], comp["weight3x3"], comp["styles"], noise=comp["noise_up"], up=2,
                               padding=1, resample_filter=f, flip_weight=False, fused_modconv=fused)
        assert_close(out, comp[f"up2_demod_noise_fused{fused}"], what=f"up2 fused={fused}")
        out = modulated_conv2d(comp["x"], comp["weight1x1"], comp["styles"], demodulate=False, fused_modconv=fused)
        assert_close(out, comp[f"torgb_nodemod_fused{fused}"], what=f"torgb fused={fused}")


def test_upsample2d_and_bias_act(components):
    up = components["upsample2d"]
    assert_close(upsample2d(up["x"], up["f"]), up["out"], what="upsample2d")
    ba = components["bias_act"]
    assert_close(bias_act(ba["x"], ba["b"], act="lrelu"), ba["lrelu_gain_sqrt2"], what="lrelu")
    assert_close(bias_act(ba["x"], ba["b"], act="lrelu", clamp=0.5), ba["lrelu_gain_sqrt2_clamp0p5"], what="clamp")
    assert_close(bias_act(ba["x"], ba["b"], act="linear", clamp=1), ba["linear_clamp1"], what="linear clamp")


def test_sr_interpolate(components):
    comp = components["sr_interpolate"]
    out = torch.nn.functional.interpolate(comp["x"], size=(comp["size"],) * 2, mode="bilinear",
                                          align_corners=False, antialias=comp["antialias"])
    assert_close(out, comp["out"], what="sr_interpolate")


def _decoder(weights: dict) -> OSGDecoder:
    dec = OSGDecoder(32, {"decoder_lr_mul": 1.0, "decoder_output_dim": 32})
    dec.load_state_dict(weights, strict=True)
    return dec


@torch.no_grad()
def test_decoder(components):
    comp = components["decoder"]
    out = _decoder(comp["weights"])(comp["sampled_features"], comp["ray_directions"])
    assert_close(out["rgb"], comp["rgb"], what="rgb")
    assert_close(out["sigma"], comp["sigma"], what="sigma")


def test_sample_from_planes(components):
    comp = components["sample_from_planes"]
    axes = comp["plane_axes"]
    assert torch.equal(ImportanceRenderer().plane_axes, axes)
    assert_close(project_onto_planes(axes, comp["coordinates"] * 2), comp["projected_box1"], what="projection")
    for box in (1.0, 1.6):
        out = sample_from_planes(axes, comp["plane_features"], comp["coordinates"], box_warp=box)
        assert_close(out, comp[f"out_box{box}"], what=f"box {box}")


def test_ray_marcher(components):
    comp = components["ray_marcher"]
    marcher = ImportanceRenderer().ray_marcher
    for white in (False, True):
        rgb, depth, weights = marcher(comp["colors"], comp["densities"], comp["depths"],
                                      {"clamp_mode": "softplus", "white_back": white})
        ref = comp[f"white_back_{white}"]
        assert_close(rgb, ref["rgb"], what="rgb")
        assert_close(depth, ref["depth"], what="depth")
        assert_close(weights, ref["weights"], what="weights")


def test_sample_importance_and_stratified(components):
    comp = components["sample_importance"]
    out = ImportanceRenderer().sample_importance(comp["z_vals"], comp["weights"], comp["N_importance"],
                                                 deterministic=True)
    assert_close(out, comp["out"], what="sample_importance")
    comp = components["sample_stratified"]
    depths = ImportanceRenderer.sample_stratified(comp["ray_origins"], comp["ray_start"], comp["ray_end"],
                                                  comp["depth_resolution"], deterministic=True)
    assert torch.equal(depths, comp["depths"]), "stratified depths must be bit-identical (same linspace)"


def test_ray_sampler(components):
    comp = components["ray_sampler"]
    origins, dirs = RaySampler()(comp["cam2world"], comp["intrinsics"], comp["resolution"])
    assert_close(origins, comp["ray_origins"], what="origins")
    assert_close(dirs, comp["ray_directions"], what="directions")


@torch.no_grad()
def test_auto_bounds_render(components):
    comp = components["auto_bounds_render"]
    c2w, intr = comp["cam2world"], comp["intrinsics"][None]
    origins, dirs = RaySampler()(c2w, intr, comp["resolution"])
    assert_close(origins, comp["ray_origins"], what="origins")
    assert_close(dirs, comp["ray_directions"], what="directions")
    tmin, tmax = get_ray_limits_box(origins, dirs, comp["box_side_length"])
    assert_close(tmin, comp["tmin"], what="tmin")
    assert_close(tmax, comp["tmax"], what="tmax")
    renderer = ImportanceRenderer()
    feats, depth, weights, internals = renderer(
        comp["planes"], _decoder(components["decoder"]["weights"]), origins, dirs, comp["rendering_options"],
        deterministic=True, return_internals=True,
    )
    assert_close(internals["depths_coarse"], comp["depths_coarse"], what="depths_coarse")
    assert_close(feats, comp["feature_samples"], what="features")
    assert_close(depth, comp["depth_samples"], what="depth")
    assert_close(weights, comp["weights_samples"], what="opacity")


# ------------------------------------------------------------------ full generator, fill


@pytest.mark.slow
@torch.no_grad()
def test_fill_parity(eg3d_fixtures, fill_module):
    ref = torch.load(eg3d_fixtures / "tiny_fill_parity.pt", weights_only=True)
    G = eg3d.TriPlaneGenerator(*ref["init_args"], **ref["init_kwargs"]).eval()
    fill_module(G, ref["fill_seed"])
    G.neural_rendering_resolution = ref["neural_rendering_resolution"]
    state = G.state_dict()
    for key, cs in ref["state_dict_checksums"].items():
        assert abs(state[key].double().sum().item() - cs["sum"]) <= 1e-6 * cs["abs_sum"] + 1e-12, key
    z, c = ref["inputs"]["z"], ref["inputs"]["c"]
    ws = G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=14)
    assert_close(ws, ref["ws_psi0.7_cutoff14"], what="ws")
    out = G.synthesis(ws, c, noise_mode="const", deterministic=True, return_internals=True)
    internals = out["internals"]
    planes = internals["planes"]
    assert_summary(planes.reshape(planes.shape[0], -1, *planes.shape[-2:]), ref["planes"], what="planes")
    rendering, strides = ref["rendering"], ref["rendering"]["ray_subset_strides"]
    assert_close(internals["depths_fine"][:, :: strides["depths_fine_ray_subset"]],
                 rendering["depths_fine_ray_subset"], what="depths_fine")
    assert_close(internals["feature_samples"][:, :: strides["feature_samples_ray_subset"]],
                 rendering["feature_samples_ray_subset"], what="feature_samples")
    assert_close(internals["depth_samples"], rendering["depth_samples"], what="depth_samples")
    assert_close(internals["weights_samples"], rendering["weights_samples"], what="weights_samples")
    assert_close(out["image_raw"], ref["outputs"]["image_raw"], what="image_raw")
    assert_close(out["image_depth"], ref["outputs"]["image_depth"], what="image_depth")
    assert_summary(out["image"], ref["outputs"]["image"], rel=LOOSE, what="image")


# ------------------------------------------------------------- full generator, tiny_G.pkl


@pytest.fixture(scope="module")
def tiny_G(eg3d_fixtures):
    return eg3d.load_network_pkl(eg3d_fixtures / "tiny_G.pkl")["G_ema"]


@pytest.fixture(scope="module")
def tiny_run(tiny, tiny_G):
    """One deterministic forward of the tiny generator, with every internal kept."""
    z, c = tiny["inputs"]["z"], tiny["inputs"]["c"]
    case = tiny["ws_cases"][tiny["synthesis_ws_case_index"]]
    with torch.no_grad():
        ws = tiny_G.mapping(z, c, truncation_psi=case["truncation_psi"], truncation_cutoff=case["truncation_cutoff"])
        out = tiny_G.synthesis(ws, c, noise_mode="const", deterministic=True, return_internals=True)
    return ws, out


def test_tiny_weights_match_checksums(tiny, tiny_G):
    state = tiny_G.state_dict()
    assert list(state) == tiny["state_dict_keys"]
    for key, cs in tiny["state_dict_checksums"].items():
        t = state[key]
        assert list(t.shape) == list(cs["shape"]) and str(t.dtype).endswith(cs["dtype"].split(".")[-1]), key
        t = t.double()
        assert abs(t.sum().item() - cs["sum"]) <= 1e-6 * cs["abs_sum"] + 1e-12, key
        assert abs(t.abs().sum().item() - cs["abs_sum"]) <= 1e-6 * cs["abs_sum"] + 1e-12, key
        assert abs(t.square().sum().item() - cs["sq_sum"]) <= 1e-6 * cs["sq_sum"] + 1e-12, key
        assert torch.equal(t.flatten()[: len(cs["head"])].float(), torch.as_tensor(cs["head"]).float().flatten()), key
    assert tiny_G.neural_rendering_resolution == tiny["neural_rendering_resolution"]
    assert tiny_G.rendering_kwargs == tiny["rendering_kwargs"]


@torch.no_grad()
def test_tiny_mapping(tiny, tiny_G):
    z, c = tiny["inputs"]["z"], tiny["inputs"]["c"]
    mi = tiny["mapping_internals"]
    mapping = tiny_G.backbone.mapping
    from eg3d.mapping import normalize_2nd_moment

    c_scaled = c * tiny_G.rendering_kwargs["c_scale"]
    assert_close(c_scaled, mi["c_scaled"], what="c_scaled")
    assert_close(normalize_2nd_moment(z), mi["z_normalized"], what="z_normalized")
    embed = mapping.embed(c_scaled)
    assert_close(embed, mi["embed_out"], what="embed_out")
    assert_close(normalize_2nd_moment(embed), mi["embed_normalized"], what="embed_normalized")
    fc0 = mapping.fc0(mi["fc_in"])
    assert_close(fc0, mi["fc0_out"], what="fc0")
    assert_close(mapping.fc1(fc0), mi["fc1_out"], what="fc1")
    assert_close(mapping.w_avg, mi["w_avg"], what="w_avg")
    for case in tiny["ws_cases"]:
        ws = tiny_G.mapping(z, c, truncation_psi=case["truncation_psi"], truncation_cutoff=case["truncation_cutoff"])
        assert_close(ws, case["ws"], what=f"ws psi={case['truncation_psi']} cutoff={case['truncation_cutoff']}")
    ws = tiny_G(z, c, truncation_psi=1, noise_mode="const", deterministic=True)
    assert set(ws) == {"image", "image_raw", "image_depth"}


@pytest.mark.slow
@torch.no_grad()
def test_tiny_backbone_blocks(tiny, tiny_G, tiny_run):
    ws, _ = tiny_run
    _, blocks = tiny_G.backbone.synthesis(ws, noise_mode="const", return_blocks=True)
    for res, ref in tiny["backbone_blocks"].items():
        x, img = blocks[int(res)]
        assert_summary(x, ref["x"], what=f"b{res}.x")
        assert_summary(img, ref["img"], what=f"b{res}.img")


@pytest.mark.slow
def test_tiny_planes_and_rendering(tiny, tiny_run):
    _, out = tiny_run
    internals = out["internals"]
    planes = internals["planes"]
    assert_summary(planes.reshape(planes.shape[0], -1, *planes.shape[-2:]), tiny["planes"], what="planes")
    r, strides = tiny["rendering"], tiny["rendering"]["ray_subset_strides"]
    for name in ("ray_origins", "ray_directions", "depths_fine", "feature_samples"):
        s = strides[f"{name}_ray_subset"]
        assert_close(internals[name][:, ::s], r[f"{name}_ray_subset"], what=name)
    assert_close(internals["sigma_coarse"][:, :: strides["sigma_coarse_ray_subset"]], r["sigma_coarse_ray_subset"],
                 what="sigma_coarse")
    assert_close(internals["weights_coarse"][:, :: strides["weights_coarse_ray_subset"]],
                 r["weights_coarse_ray_subset"], what="weights_coarse")
    depths = internals["depths_coarse"]
    assert torch.equal(depths[0, 0, :, 0], r["depths_coarse_first_ray"])
    assert bool((depths == depths[:1, :1]).all()) == r["depths_coarse_identical_for_all_rays"]
    for name in ("sigma_coarse", "rgb_coarse", "sigma_fine", "rgb_fine", "feature_samples"):
        t = internals[name].double()
        ref = r[name]
        assert list(t.reshape(ref["shape"]).shape) == list(ref["shape"]), name
        assert abs(t.sum().item() - ref["sum"]) <= 1e-6 * ref["abs_sum"] + 1e-9, name
        assert abs(t.std().item() - ref["std"]) <= 1e-5 * ref["std"], name
    assert_close(internals["depth_samples"], r["depth_samples"], what="depth_samples")
    assert_close(internals["weights_samples"], r["weights_samples"], what="weights_samples")


@pytest.mark.slow
def test_tiny_superresolution_and_outputs(tiny, tiny_run):
    _, out = tiny_run
    sr, ref = out["internals"]["superresolution"], tiny["superresolution"]
    assert_summary(sr["input_x"], ref["input_x_after_resize"], rel=TIGHT, what="sr.input_x")
    assert_summary(sr["input_rgb"], ref["input_rgb_after_resize"], rel=TIGHT, what="sr.input_rgb")
    assert_summary(sr["block0_x"], ref["block0_x"], rel=LOOSE, what="sr.block0_x")
    assert_summary(sr["block0_rgb"], ref["block0_rgb"], rel=LOOSE, what="sr.block0_rgb")
    assert_close(out["image_raw"], tiny["outputs"]["image_raw"], what="image_raw")
    assert_close(out["image_depth"], tiny["outputs"]["image_depth"], what="image_depth")
    assert_summary(out["image"], tiny["outputs"]["image"], rel=LOOSE, what="image")
