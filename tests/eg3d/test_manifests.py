"""Our generator, built from each released checkpoint's kwargs, has exactly its state_dict layout."""
import json

import pytest
import torch

import eg3d

MANIFESTS = [
    "ffhqrebalanced512-128",
    "ffhq512-128",
    "ffhqrebalanced512-64",
    "afhqcats512-128",
    "shapenetcars128-64",
]


def _layout(module: torch.nn.Module) -> dict:
    params = {name for name, _ in module.named_parameters()}
    return {
        key: {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
              "kind": "parameter" if key in params else "buffer"}
        for key, t in module.state_dict().items()
    }


def _manifest_layout(entries: dict) -> dict:
    return {k: {"shape": v["shape"], "dtype": v["dtype"].replace("torch.", ""), "kind": v["kind"]}
            for k, v in entries.items()}


@pytest.mark.parametrize("name", MANIFESTS)
def test_state_dict_layout(eg3d_fixtures, name):
    manifest = json.loads((eg3d_fixtures / f"manifest_{name}.json").read_text())
    with torch.device("meta"):
        G = eg3d.TriPlaneGenerator(*manifest["init_args"], **manifest["init_kwargs"])
    layout = _layout(G)
    assert list(layout) == list(manifest["state_dict"]), "keys or their order differ"
    assert layout == _manifest_layout(manifest["state_dict"])
    assert sum(p.numel() for p in G.parameters()) == manifest["total_parameters"]
    assert sum(b.numel() for b in G.buffers() if b is not G.renderer.plane_axes) == manifest["total_buffer_elements"]
    assert G.num_ws == manifest["num_ws"]
    blocks = G.backbone.synthesis.block_resolutions
    assert blocks == manifest["backbone_block_resolutions"]
    channels = {str(r): getattr(G.backbone.synthesis, f"b{r}").out_channels for r in blocks}
    assert channels == manifest["backbone_channels"]


def test_alternative_superresolution_layouts(eg3d_fixtures):
    """AFHQ's competing hypothesis (SuperresolutionHybrid8X) matches the listed entries too."""
    manifest = json.loads((eg3d_fixtures / "manifest_afhqcats512-128.json").read_text())
    alt = manifest["alternative"]
    kwargs = json.loads(json.dumps(manifest["init_kwargs"]))
    kwargs["rendering_kwargs"]["superresolution_module"] = alt["hypothesis"].split("=")[-1].strip()
    with torch.device("meta"):
        G = eg3d.TriPlaneGenerator(**kwargs)
    layout = {k: v for k, v in _layout(G).items() if k.startswith("superresolution.")}
    assert layout == _manifest_layout(alt["state_dict_superresolution_entries"])
    assert sum(p.numel() for p in G.parameters()) == alt["total_parameters"]


@pytest.mark.parametrize("name", MANIFESTS)
def test_released_configurations_pass_the_loader_bounds(eg3d_fixtures, name):
    """eg3d.bounds refuses implausible files; every released configuration stays inside."""
    from eg3d.bounds import check_generator_config

    manifest = json.loads((eg3d_fixtures / f"manifest_{name}.json").read_text())
    check_generator_config(manifest["init_args"], manifest["init_kwargs"], manifest["rendering_kwargs"],
                           manifest["neural_rendering_resolution"])
