"""`python -m guide.toy.train` writes every file the toy world loads, with a manifest that matches."""
import json

from guide.io.hashing import sha256_file
from guide.toy.train import main
from guide.toy.world import toy_world


def test_a_short_training_run_writes_a_loadable_world(tmp_path):
    out = tmp_path / "weights"
    manifest = main(["--out", str(out), "--gen-steps", "1", "--gen-batch", "2", "--id-steps", "2",
                     "--id-heads", "8", "--held-heads", "8"])
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert set(manifest["files"]) == {"generator.safetensors", "generator.json", "arcface.safetensors",
                                      "curricularface.safetensors"}
    for name, entry in manifest["files"].items():
        assert sha256_file(out / name) == entry["sha256"]
    fit = manifest["fit"]
    assert {"heldout_psnr_image", "heldout_psnr_raw", "w_minus_w_avg_median"} <= set(fit["generator"])
    for name in ("arcface", "curricularface"):  # fit on scene renders, generator renders and across them
        assert {kind: set(fit[name][kind]) >= {"heldout_accuracy", "threshold"} for kind in fit[name]} == {
            "scene": True, "generator": True, "generator_vs_scene": True}
    world = toy_world("cpu", out)
    assert world.G.num_ws == 10 and world.G.z_dim == 16
