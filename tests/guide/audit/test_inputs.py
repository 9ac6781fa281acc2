"""Which folders and generators an audit accepts: an unlearned copy of the source, nothing else."""
import copy
import json
import shutil

import pytest
import torch

from guide.audit.inputs import NotAnUnlearnedCopyError, check_unlearned_copy, open_subject
from guide.evaluate.erase_output import NotAnEraseOutputError
from tests.guide.audit.conftest import altered
from tests.guide.evaluate.conftest import build_erase_output


def test_synthesis_changes_pass_and_identical_weights_are_noted(audit_source):
    assert check_unlearned_copy(audit_source, altered(audit_source, scale=0.01)) == []
    notes = check_unlearned_copy(audit_source, copy.deepcopy(audit_source))
    assert notes and "nothing was erased" in notes[0]


@pytest.mark.parametrize("part", ["backbone.mapping.fc0.weight", "decoder.net.0.weight",
                                  "superresolution.block0.conv0.weight"])
def test_a_change_outside_the_synthesis_network_is_refused(audit_source, part):
    other = copy.deepcopy(audit_source)
    with torch.no_grad():
        other.state_dict()[part].add_(1e-3)
    with pytest.raises(NotAnUnlearnedCopyError, match=part.replace(".", r"\.")):
        check_unlearned_copy(audit_source, other)


def test_another_architecture_is_refused(audit_source, tiny_generator_factory):
    other = tiny_generator_factory(seed=0, nrr=32)  # same weights, other rendering resolution
    with pytest.raises(NotAnUnlearnedCopyError, match="neural_rendering_resolution"):
        check_unlearned_copy(audit_source, other)


@pytest.fixture(scope="module")
def erase_folder(tmp_path_factory, audit_source):
    return build_erase_output(tmp_path_factory.mktemp("audit-inputs") / "run", audit_source,
                              altered(audit_source, scale=0.05), num_views=1)


def test_open_subject_reads_latent_and_both_generators(erase_folder, erased_latent):
    subject = open_subject(erase_folder)
    assert torch.equal(subject.w_u, erased_latent)
    assert subject.source["source"]["sha256"] and subject.source["unlearned"]["path"].endswith("generator.json")


@pytest.mark.parametrize("remove, message", [("latents.pt", "missing latents.pt"),
                                             ("config.json", "missing config.json"),
                                             ("generator.json", "missing generator.json")])
def test_incomplete_folders_are_refused_in_one_line(erase_folder, tmp_path, remove, message):
    broken = tmp_path / "run"
    shutil.copytree(erase_folder, broken)
    (broken / remove).unlink()
    with pytest.raises(NotAnEraseOutputError, match=message):
        open_subject(broken)


def test_a_batch_identity_folder_uses_the_model_its_config_names(erase_folder, tmp_path):
    batch = tmp_path / "batch"
    shutil.copytree(erase_folder, batch / "alice")
    (batch / "model").mkdir()
    for name in ("generator.json", "generator.safetensors"):
        shutil.move(batch / "alice" / name, batch / "model" / name)
    config = json.loads((batch / "alice" / "config.json").read_text())
    config["batch"] = {"generator": "../model/generator.json"}
    (batch / "alice" / "config.json").write_text(json.dumps(config))
    subject = open_subject(batch / "alice")
    assert subject.source["unlearned"]["path"] == str((batch / "model" / "generator.json").resolve())
