"""Our generator format (safetensors + JSON): exact round trips, atomic saves, tamper detection."""
import json
import os

import pytest
import torch

import guide
from guide.io import (
    CorruptCheckpointError,
    GeneratorSpec,
    IncompatibleGeneratorError,
    MissingCheckpointError,
    Provenance,
    generator_paths,
    generator_spec,
    load_any_generator,
    load_generator,
    read_generator_config,
    save_generator,
)

from .conftest import assert_state_dicts_identical


def _assert_same_generator(G, H):
    assert_state_dicts_identical(G, H)
    assert H.init_args == G.init_args
    assert H.init_kwargs == G.init_kwargs
    assert H.rendering_kwargs == G.rendering_kwargs
    assert H.neural_rendering_resolution == G.neural_rendering_resolution
    assert not H.training and not any(p.requires_grad for p in H.parameters())


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def test_round_trip_random_tiny(random_generator, tmp_path):
    hp = {"lr": 1e-4, "iters": 1000, "lambdas": (1.0, 0.1)}
    files = save_generator(
        random_generator, tmp_path / "unlearned",
        provenance=Provenance(method="guide", source_checkpoint="ffhq.pkl", source_sha256="ab" * 32, hyperparameters=hp))
    assert files.weights == tmp_path / "unlearned.safetensors" and files.config == tmp_path / "unlearned.json"
    H = load_generator(files.config)
    _assert_same_generator(random_generator, H)
    doc = json.loads(files.config.read_text())
    assert doc["format"] == "guide-generator" and doc["class_name"] == "TriPlaneGenerator"
    assert doc["neural_rendering_resolution"] == 32
    prov = doc["provenance"]
    assert prov["method"] == "guide" and prov["source_sha256"] == "ab" * 32
    assert prov["toolkit_version"] == guide.__version__ and prov["created"].endswith("+00:00")
    assert read_generator_config(files.weights)["provenance"]["hyperparameters"] == hp  # tuple restored
    assert doc["weights"]["num_tensors"] == len(random_generator.state_dict())
    assert _leftovers(tmp_path) == []


def test_round_trip_tiny_pkl_generator(pkl_generator, tmp_path):
    save_generator(pkl_generator, tmp_path, provenance={"method": "none", "note": "fixture"})
    assert (tmp_path / "generator.safetensors").is_file() and (tmp_path / "generator.json").is_file()
    H = load_generator(tmp_path)
    _assert_same_generator(pkl_generator, H)
    assert read_generator_config(tmp_path)["provenance"]["note"] == "fixture"
    H2 = load_any_generator(tmp_path / "generator.safetensors")
    assert_state_dicts_identical(pkl_generator, H2)


def test_spec_roundtrip_keeps_tuples(tmp_path):
    import eg3d
    from eg3d import configs

    kwargs = configs.tiny()
    kwargs["rendering_kwargs"]["avg_camera_pivot"] = (0, 0, 0.2)
    G = eg3d.TriPlaneGenerator(**kwargs)
    save_generator(G, tmp_path / "g.json")
    H = load_generator(tmp_path / "g")
    assert H.init_kwargs["rendering_kwargs"]["avg_camera_pivot"] == (0, 0, 0.2)
    assert H.rendering_kwargs["avg_camera_pivot"] == (0, 0, 0.2)


def test_generator_paths(tmp_path):
    assert generator_paths(tmp_path) == (tmp_path / "generator.safetensors", tmp_path / "generator.json")
    for name in ("g.v2", "g.v2.json", "g.v2.safetensors"):
        assert generator_paths(tmp_path / name) == (tmp_path / "g.v2.safetensors", tmp_path / "g.v2.json")


def test_generator_spec_needs_recorded_kwargs(random_generator, tmp_path):
    spec = generator_spec(random_generator)
    assert spec.class_name == "TriPlaneGenerator" and spec.neural_rendering_resolution == 32
    plain = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="init_kwargs"):
        generator_spec(plain)
    # upstream-style attribute names are accepted too
    plain._init_kwargs, plain._init_args = {"a": 1}, ()
    assert generator_spec(plain).init_kwargs == {"a": 1}


def test_interrupted_weights_write_leaves_nothing(random_generator, tmp_path, monkeypatch):
    import safetensors.torch

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt("simulated crash while writing weights")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_generator(random_generator, tmp_path / "g")
    assert sorted(os.listdir(tmp_path)) == []


def test_interrupted_json_write_leaves_no_valid_pair(random_generator, tmp_path, monkeypatch):
    save_generator(random_generator, tmp_path / "g")  # an older, valid pair
    real_replace = os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("simulated crash before the JSON was renamed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_json)
    with pytest.raises(OSError, match="simulated"):
        save_generator(random_generator, tmp_path / "g")
    monkeypatch.setattr(os, "replace", real_replace)
    assert not (tmp_path / "g.json").exists()  # the old description was removed first
    assert _leftovers(tmp_path) == []
    with pytest.raises(MissingCheckpointError, match="g.json"):
        load_generator(tmp_path / "g")


def test_tampered_weights_are_refused(random_generator, tmp_path):
    files = save_generator(random_generator, tmp_path / "g")
    data = bytearray(files.weights.read_bytes())
    data[-3] ^= 0x01  # flip one bit of the last tensor
    files.weights.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="sha256") as info:
        load_generator(files.config)
    assert "\n" not in info.value.one_line()


def test_truncated_weights_are_refused(random_generator, tmp_path):
    files = save_generator(random_generator, tmp_path / "g")
    files.weights.write_bytes(files.weights.read_bytes()[:1000])
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        load_generator(files.config)


def test_tampered_or_foreign_json(random_generator, tmp_path):
    files = save_generator(random_generator, tmp_path / "g")
    doc = json.loads(files.config.read_text())
    doc["weights"]["file"] = "../elsewhere.safetensors"
    files.config.write_text(json.dumps(doc))
    with pytest.raises(CorruptCheckpointError, match="plain file name"):
        load_generator(files.config)
    files.config.write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="JSON"):
        load_generator(files.config)
    files.config.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CorruptCheckpointError, match="guide-generator"):
        load_generator(files.config)


def test_weights_that_do_not_fit_the_spec(random_generator, tmp_path):
    spec = generator_spec(random_generator)
    wrong = GeneratorSpec(spec.class_name, spec.init_args, {**spec.init_kwargs, "z_dim": 8},
                          spec.rendering_kwargs, spec.neural_rendering_resolution)
    save_generator(random_generator, tmp_path / "g", spec=wrong)
    with pytest.raises(IncompatibleGeneratorError, match="do not fit"):
        load_generator(tmp_path / "g")


def test_load_any_generator(tiny_pkl, pkl_generator, tmp_path):
    assert_state_dicts_identical(pkl_generator, load_any_generator(tiny_pkl))
    with pytest.raises(MissingCheckpointError):
        load_any_generator(tmp_path / "nothing.pkl")
    with pytest.raises(MissingCheckpointError):
        load_any_generator(tmp_path / "nothing")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(tiny_pkl.read_bytes()[:5000])
    with pytest.raises(CorruptCheckpointError, match="truncated") as info:
        load_any_generator(bad)
    assert "\n" not in str(info.value)


def test_json_rejects_unserialisable_values(random_generator, tmp_path):
    with pytest.raises(TypeError, match="provenance.hyperparameters"):
        save_generator(random_generator, tmp_path / "g", provenance={"hyperparameters": object()})
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


# ------------------------------------------------- hostile descriptions, bounded before building


def _edit_config(config, edit):
    doc = json.loads(config.read_text())
    edit(doc)
    config.write_text(json.dumps(doc))


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["init_kwargs"].update(w_dim=40000), "init_kwargs.w_dim"),  # would build ~19 GB
    (lambda d: d["init_kwargs"]["mapping_kwargs"].update(num_layers=10**7), "num_layers"),
    (lambda d: d.update(neural_rendering_resolution=100000), "neural_rendering_resolution"),  # 80 GB per render
    (lambda d: d.update(neural_rendering_resolution="abc"), "neural_rendering_resolution"),
    (lambda d: d.update(rendering_kwargs="x"), "rendering_kwargs"),
    (lambda d: d.update(rendering_kwargs={}), "rendering_kwargs: missing"),
    (lambda d: d["init_kwargs"].update(architecture={"a": [[[[[]]]]]}), None),  # builder's ValueError
    (lambda d: d.update(provenance=json.loads("[" * 200 + "]" * 200)), "nested deeper"),
])
def test_implausible_description_refused_in_one_line(random_generator, tmp_path, edit, field):
    files = save_generator(random_generator, tmp_path / "g")
    _edit_config(files.config, edit)
    with pytest.raises((CorruptCheckpointError, IncompatibleGeneratorError)) as info:
        load_any_generator(files.config)
    message = str(info.value)
    assert "\n" not in message and str(files.config) in message
    assert field is None or field in message


def test_json_nested_beyond_the_parser_is_one_line(random_generator, tmp_path):
    files = save_generator(random_generator, tmp_path / "g")
    files.config.write_text('{"format": "guide-generator", "x": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(CorruptCheckpointError, match="nested deeper"):
        load_generator(files.config)


def test_weights_of_another_dtype_refused(random_generator, tmp_path):
    """A float64 (or int8, bf16) tensor in our safetensors is refused, not cast."""
    from safetensors.torch import load_file, save_file

    from guide.io.hashing import sha256_file

    files = save_generator(random_generator, tmp_path / "g")
    tensors = load_file(str(files.weights))
    name = next(k for k, t in tensors.items() if t.is_floating_point())
    tensors[name] = tensors[name].double()
    save_file(tensors, str(files.weights))
    _edit_config(files.config, lambda d: d["weights"].update(bytes=files.weights.stat().st_size,
                                                             sha256=sha256_file(files.weights)))
    with pytest.raises(IncompatibleGeneratorError, match=f"{name} torch.float64 \\(expected torch.float32\\)"):
        load_generator(files.config)


def test_non_finite_weights_refused(random_generator, tmp_path):
    with torch.no_grad():
        next(iter(random_generator.parameters())).view(-1)[0] = float("nan")
    files = save_generator(random_generator, tmp_path / "g")
    with pytest.raises(CorruptCheckpointError, match="non-finite values"):
        load_any_generator(files.config)
