"""ID similarity on real photos (../shared/faces): alignment must make the metric see identities.

With a random-weight IR-101 the absolute numbers mean nothing, but the protocol still has to be
consistent: a photo against itself gives 1; a rotated/scaled/moved (wild_k), shifted or mirrored
copy aligns to nearly the same crop and stays closer to its source than to other people; without
alignment that fails. Broken detection, landmark order, warping or embedding makes these fail.
"""
import numpy as np
import pytest
from PIL import Image

from guide.errors import GuideError
from guide.evaluate.identity import IdentityScorer, evaluate_identity, identity_scorer, load_image
from tests.conftest import _require

PEOPLE = ("aligned_1", "aligned_2", "aligned_3")


@pytest.fixture(scope="module")
def faces(shared_dir):
    folder = _require(shared_dir / "faces")
    images = {name: load_image(folder / f"{name}.jpg") for name in PEOPLE + ("wild_1", "wild_2")}
    shifted = np.zeros((700, 760, 3), np.uint8)
    shifted[100:612, 200:712] = images["aligned_1"]
    images["shifted_1"] = shifted
    images["flipped_1"] = np.ascontiguousarray(images["aligned_1"][:, ::-1])
    return images


@pytest.fixture(scope="module")
def scorer():
    return identity_scorer(random_weights=True, no_face="error")


@pytest.fixture(scope="module")
def crops(faces, scorer):
    out = {}
    for name, image in faces.items():
        crop, found = scorer.crop(image, name)
        assert found, f"no face detected in {name}"
        out[name] = crop
    return out


@pytest.fixture(scope="module")
def similarity(crops, scorer):
    names = list(crops)
    emb = scorer.similarity.embed_crops([crops[n] for n in names])
    table = (emb @ emb.T).double().numpy()
    return lambda a, b: float(table[names.index(a), names.index(b)])


def test_photo_against_itself_is_one(faces, scorer):
    sims, missed = scorer.pair_similarities([faces[p] for p in PEOPLE[:2]], [faces[p].copy() for p in PEOPLE[:2]])
    np.testing.assert_allclose(sims, 1.0, atol=1e-5)
    assert missed == 0


@pytest.mark.parametrize("copy, source", [("wild_1", "aligned_1"), ("wild_2", "aligned_2"),
                                          ("shifted_1", "aligned_1")])
def test_moved_copies_align_to_nearly_the_same_crop(crops, copy, source):
    """Mean absolute crop difference in grey levels: sub-pixel landmark jitter and the 0.55x
    rescale of wild_1 leave ~5-16 levels; a different person is >= 33 levels away."""
    crops = {k: v.astype(np.float64) for k, v in crops.items()}
    own = np.abs(crops[copy] - crops[source]).mean()
    others = [np.abs(crops[copy] - crops[p]).mean() for p in PEOPLE if p != source]
    assert own < 20.0, f"{copy} aligned {own:.1f} grey levels away from {source}"
    assert own < 0.5 * min(others)


def test_mirrored_copy_aligns_to_the_mirrored_crop(crops):
    crops = {k: v.astype(np.float64) for k, v in crops.items()}
    mirrored = crops["aligned_1"][:, ::-1]
    own = np.abs(crops["flipped_1"] - mirrored).mean()
    assert own < 0.5 * min(np.abs(crops[p][:, ::-1] - mirrored).mean() for p in PEOPLE[1:])


@pytest.mark.parametrize("copy, source", [("wild_1", "aligned_1"), ("wild_2", "aligned_2"),
                                          ("shifted_1", "aligned_1"), ("flipped_1", "aligned_1")])
def test_copies_stay_closest_to_their_own_person(similarity, copy, source):
    own = similarity(copy, source)
    assert own > 0.85
    for other in PEOPLE:
        if other != source:
            assert own > similarity(copy, other) + 0.05, (copy, other)


def test_different_people_are_clearly_less_similar(similarity):
    for i, a in enumerate(PEOPLE):
        for b in PEOPLE[i + 1:]:
            assert similarity(a, b) < 0.85


def test_without_alignment_the_metric_loses_the_person(faces, scorer, similarity):
    """The naive alternative (resize the whole image) scores a moved copy far lower: alignment matters."""
    def naive(name):
        return np.asarray(Image.fromarray(faces[name]).resize((112, 112), Image.BILINEAR))

    emb = scorer.similarity.embed_crops([naive("wild_1"), naive("aligned_1")])
    assert float(emb[0] @ emb[1]) < similarity("wild_1", "aligned_1") - 0.2


def test_id_and_id_others_from_photo_pairs(faces, scorer):
    """ID pairs before/after per view and averages; others likewise."""
    before = [faces["aligned_1"], faces["aligned_2"]]
    result = evaluate_identity(before, [faces["wild_1"], faces["wild_2"]], scorer,
                               others_pairs=[([faces["aligned_3"]], [faces["aligned_3"]])], progress=False)
    assert result.num_views == 2 and result.id > 0.85
    assert result.id == pytest.approx(np.mean(result.id_per_view))
    assert result.id_others == pytest.approx(1.0, abs=1e-5)
    swapped = evaluate_identity(before, [faces["aligned_3"], faces["aligned_1"]], scorer, progress=False)
    assert swapped.id < result.id - 0.05 and swapped.id_others is None


def test_no_face_policies(faces, scorer):
    blank = np.full((256, 256, 3), 127, np.uint8)
    with pytest.raises(GuideError, match="no face"):
        scorer.pair_similarities([blank], [faces["aligned_1"]])
    skip = IdentityScorer(scorer.similarity, no_face="skip")
    sims, missed = skip.pair_similarities([blank, faces["aligned_1"]], [faces["aligned_1"], faces["aligned_1"]])
    assert np.isnan(sims[0]) and sims[1] == pytest.approx(1.0, abs=1e-5) and missed == 1
    fixed = IdentityScorer(scorer.similarity, no_face="fixed")
    sims, missed = fixed.pair_similarities([blank], [blank])
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and missed == 2
    result = evaluate_identity([blank, faces["aligned_1"]], [faces["aligned_1"]] * 2, skip, progress=False)
    assert result.id == pytest.approx(1.0, abs=1e-5) and result.no_face == 1 and result.id_per_view[0] is None


def test_detection_uses_the_reference_evaluation_thresholds(faces, scorer):
    """The scorer's MTCNN runs at id_sim.py's thresholds (0.15/0.25/0.35, factor 0.707). On a
    low-contrast copy of a face (contrast x0.1, found by probing 0.3 / 0.1 / 0.05) they still find
    the face that facenet-pytorch's defaults (0.6/0.7/0.7) miss."""
    from guide.identity.detect import DETECTOR_SETTINGS, FaceDetector

    mtcnn = scorer.similarity.detector.mtcnn
    assert list(mtcnn.thresholds) == [0.15, 0.25, 0.35] and mtcnn.factor == 0.707
    faint = np.clip(128 + (faces["aligned_1"].astype(float) - 128) * 0.1, 0, 255).astype(np.uint8)
    assert scorer.crop(faint, "faint")[1]
    assert FaceDetector(**DETECTOR_SETTINGS["facenet"])(faint) == []


def test_others_auto_are_the_folders_other_photos(tmp_path, tiny_generator_factory):
    """Others(kind='auto') against an erase output: the other photos' latents (latents.pt
    w_others) for a folder erasure, random identities otherwise, none when the count is 0."""
    from types import SimpleNamespace

    import torch

    from guide.config import CameraConfig
    from guide.evaluate.identity import Others, other_latents

    w_others = torch.randn(4, 14, 512, generator=torch.Generator().manual_seed(0))
    torch.save({"w_u": torch.zeros(1, 14, 512), "w_others": w_others}, tmp_path / "latents.pt")
    folder_run = SimpleNamespace(root=tmp_path, config={"identity": {"kind": "folder", "value": "d", "index": 1}})
    random_run = SimpleNamespace(root=tmp_path, config={"identity": {"kind": "random", "value": 3}})
    others = Others("auto").resolve(folder_run)
    assert others.kind == "folder" and "other photos" in others.describe()
    G = tiny_generator_factory()
    assert torch.equal(other_latents(others, G, CameraConfig(), "cpu"), w_others)
    assert Others("auto").resolve(random_run) == Others("random")
    assert Others("auto", count=0).resolve(random_run).kind == "none"
    assert Others("random", count=2).resolve(folder_run).kind == "random"  # an explicit choice stays
