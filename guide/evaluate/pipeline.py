"""Evaluating an erase output folder (or two generators): networks, generators, metrics.json.

The CLI (``guide eval id|fid|all|report``) calls these; tests inject networks through
:class:`EvalNetworks` (``random_weights=True`` or ready-made ``scorer`` / ``inception``).
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch

import guide
from guide.errors import GuideError
from guide.evaluate.cache import FeatureCache
from guide.evaluate.erase_output import NEEDS_GENERATOR, NEEDS_RENDERS, EraseOutput
from guide.evaluate.fid import FIDResult, evaluate_fid
from guide.evaluate.frechet import FEATURE_DIM, Statistics, load_real_statistics
from guide.evaluate.identity import (IDResult, IdentityScorer, Others, evaluate_identity, identity_scorer,
                                     load_image, other_latents, render_before_after)
from guide.evaluate.inception import InceptionFeatures, inception_features
from guide.evaluate.sampling import SampleSettings

PathLike = Union[str, "os.PathLike[str]"]
DeviceLike = Union[str, torch.device]
REAL_DEFAULT_FILE = "ffhq_real_feat.npy"


@dataclass
class EvalNetworks:
    """The evaluation networks, built on first use (pass ``scorer``/``inception`` to inject)."""

    checkpoint_dir: Optional[PathLike] = None
    device: DeviceLike = "cpu"
    random_weights: bool = False
    no_face: str = "fixed"
    detection: str = "reference"  # MTCNN thresholds: the reference evaluation's, or facenet-pytorch's
    scorer: Optional[IdentityScorer] = None
    inception: Optional[InceptionFeatures] = None

    def identity(self) -> IdentityScorer:
        if self.scorer is None:
            self.scorer = identity_scorer(self.checkpoint_dir, device=self.device, random_weights=self.random_weights,
                                          no_face=self.no_face, detection=self.detection)
        return self.scorer

    def features(self) -> InceptionFeatures:
        if self.inception is None:
            self.inception = inception_features(self.checkpoint_dir, device=self.device,
                                                random_weights=self.random_weights)
        return self.inception


@dataclass
class Generators:
    """The pretrained and unlearned generators of one evaluation, loaded on first use."""

    run: Optional[EraseOutput] = None
    pretrained_path: Optional[PathLike] = None
    unlearned_path: Optional[PathLike] = None
    device: DeviceLike = "cpu"
    loaded: Dict[str, torch.nn.Module] = field(default_factory=dict)
    described: Dict[str, str] = field(default_factory=dict)

    def pretrained(self) -> torch.nn.Module:
        if "pretrained" not in self.loaded:
            path = self._pretrained_path()
            self.loaded["pretrained"] = _load(path, self.device)
            self.described["pretrained"] = str(path)
        return self.loaded["pretrained"]

    def unlearned(self) -> torch.nn.Module:
        if "unlearned" not in self.loaded:
            if self.unlearned_path is not None:
                path = Path(self.unlearned_path)
            elif self.run is not None:
                path = self.run.generator_path
            else:
                raise GuideError("no unlearned generator: give an erase output folder or --unlearned")
            self.loaded["unlearned"] = _load(path, self.device)
            self.described["unlearned"] = str(path)
        return self.loaded["unlearned"]

    def _pretrained_path(self) -> Path:
        if self.pretrained_path is not None:
            return Path(self.pretrained_path)
        if self.run is None:
            raise GuideError("no pretrained generator: give an erase output folder or --pretrained")
        path = self.run.source_generator
        if path is None:
            raise GuideError(f"{self.run.root}/config.json does not name the source generator as a file "
                             f"(source_generator: {self.run.config.get('source_generator')!r}); pass --pretrained")
        if not path.is_file():
            raise GuideError(f"the erasure's source generator {path} is gone; pass --pretrained")
        recorded = self.run.source_sha256
        if recorded:
            from guide.io.hashing import sha256_file

            if sha256_file(path) != recorded.lower():
                raise GuideError(f"{path} is not the file the erasure started from (sha256 differs from "
                                 f"config.json); pass --pretrained to evaluate against it anyway")
        return path


def _load(path: Path, device: DeviceLike) -> torch.nn.Module:
    from guide.io import load_any_generator

    return load_any_generator(path, device=device)


def missing_real_message(folder: Path) -> str:
    """Why ΔFID_real was not computed (one line)."""
    return (f"ΔFID_real needs real statistics: pass --real FEATS (Inception features [M,2048] .npy such as the "
            f"reference's {REAL_DEFAULT_FILE}, or a .npz with mu/sigma), or put {REAL_DEFAULT_FILE} in {folder}")


def resolve_real(real: Optional[PathLike], checkpoint_dir: Optional[PathLike],
                 required: bool = True, dim: int = FEATURE_DIM) -> Optional[Tuple[Statistics, str]]:
    """Real statistics from ``real``, else ``ffhq_real_feat.npy`` in the checkpoint folder. Without
    either: a GuideError when ``required``, else None (the caller reports :func:`missing_real_message`).
    A ``real`` file that is given but unreadable is always an error."""
    if real is None:
        from guide.paths import resolve_checkpoint_dir

        candidate = resolve_checkpoint_dir(checkpoint_dir) / REAL_DEFAULT_FILE
        if not candidate.is_file():
            if not required:
                return None
            raise GuideError("missing real statistics: " + missing_real_message(candidate.parent))
        real = candidate
    return load_real_statistics(real, dim), str(real)


def _real_for(real: Optional[PathLike], use_real: bool, networks: "EvalNetworks"
              ) -> Tuple[Optional[Tuple[Statistics, str]], Dict[str, Any]]:
    """(real statistics or None, metrics entries noting why ΔFID_real is missing)."""
    checkpoint_dir = networks.checkpoint_dir
    if not use_real:
        return None, {"delta_FID_real_note": "not requested (--no-real)"}
    stats = resolve_real(real, checkpoint_dir, required=False, dim=networks.features().dims)
    if stats is None:
        from guide.paths import resolve_checkpoint_dir

        return None, {"delta_FID_real_note": missing_real_message(resolve_checkpoint_dir(checkpoint_dir))}
    return stats, {"delta_FID_real_note": None}


def _with_published(run: EraseOutput, merged: Dict[str, Any]) -> Dict[str, Any]:
    """Merge the published values and the differences (guide.evaluate.reference) into metrics.json."""
    from guide.evaluate.reference import comparison, method_of, scenario_of

    return run.merge_metrics({"published": comparison(merged, method_of(run.config), scenario_of(run.config))})


def _evaluation_entry(networks: EvalNetworks, generators: Generators) -> Dict[str, Any]:
    return {"random_networks": bool(networks.random_weights), "device": str(networks.device),
            "guide_version": guide.__version__, "pretrained": generators.described.get("pretrained"),
            "unlearned": generators.described.get("unlearned"),
            "evaluated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


# -------------------------------------------------------------------------------- ID


def id_for_output(run: EraseOutput, networks: EvalNetworks, generators: Generators, others: Others = Others(),
                  progress: bool = True) -> IDResult:
    """ID from the folder's before/after renders; ID_others from ``others`` (``auto``: the folder's
    other photos for a folder erasure, else random identities) rendered by both generators."""
    others = others.resolve(run)
    scorer = networks.identity()  # a missing network file is reported before any rendering
    before = [load_image(p) for p in run.before_paths]
    after = [load_image(p) for p in run.after_paths]
    pairs = []
    if others.kind != "none":
        G_src, G_unl = generators.pretrained(), generators.unlearned()
        latents = other_latents(others, G_src, run.camera, networks.device, networks.checkpoint_dir)
        pairs = render_before_after(G_src, G_unl, latents, run.camera, len(before), progress=progress,
                                    renders=run.renders, seed=run.seed)
    return evaluate_identity(before, after, scorer, others_pairs=pairs, others=others.describe(),
                             progress=progress)


def eval_id(out_dir: PathLike, networks: EvalNetworks, *, pretrained: Optional[PathLike] = None,
            others: Others = Others(), progress: bool = True) -> Dict[str, Any]:
    """``guide eval id``: compute, merge into metrics.json, return the merged metrics."""
    run = EraseOutput.open(out_dir, needs=(NEEDS_RENDERS,))
    others = others.resolve(run)
    if others.kind != "none":
        run = EraseOutput.open(out_dir, needs=(NEEDS_RENDERS, NEEDS_GENERATOR))
    generators = Generators(run, pretrained, device=networks.device)
    if others.kind != "none":
        generators.pretrained(), generators.unlearned()  # before any rendering
    result = id_for_output(run, networks, generators, others, progress)
    return _with_published(run, run.merge_metrics({**result.metrics(),
                                                   "evaluation": _evaluation_entry(networks, generators)}))


# ------------------------------------------------------------------------------- FID


def fid_for_generators(generators: Generators, networks: EvalNetworks, settings: SampleSettings, *,
                       real: Optional[Tuple[Statistics, str]], batch: int, cache: Optional[FeatureCache],
                       progress: bool = True) -> FIDResult:
    """FID_pre (and ΔFID_real with ``real``) of the two generators."""
    stats, source = real if real is not None else (None, None)
    return evaluate_fid(generators.pretrained(), generators.unlearned(), networks.features(), settings,
                        real=stats, real_source=source, batch=batch, device=networks.device, cache=cache,
                        progress=progress)


def sample_settings_for(run: Optional[EraseOutput], num: int, seed: int, **kwargs) -> SampleSettings:
    """The FID protocol with the erasure's camera (FOV, pivot, radius) when there is one."""
    if run is not None:
        return SampleSettings.with_camera(run.camera, num=num, seed=seed, **kwargs)
    return SampleSettings(num=num, seed=seed, **kwargs)


def eval_fid(out_dir: Optional[PathLike], networks: EvalNetworks, *, real: Optional[PathLike] = None,
             use_real: bool = True, pretrained: Optional[PathLike] = None, unlearned: Optional[PathLike] = None,
             num: int = 5000, seed: int = 0, batch: int = 8, cache: Optional[FeatureCache] = None,
             progress: bool = True, **sample_kwargs) -> Dict[str, Any]:
    """``guide eval fid``: FID numbers; merged into metrics.json when ``out_dir`` is given. Without
    real statistics (none given, none in the checkpoints folder) ΔFID_real is None and
    ``delta_FID_real_note`` says what to pass."""
    run = EraseOutput.open(out_dir, needs=(NEEDS_GENERATOR,) if unlearned is None else ()) if out_dir else None
    real_stats, note = _real_for(real, use_real, networks)
    generators = Generators(run, pretrained, unlearned, device=networks.device)
    settings = sample_settings_for(run, num, seed, **sample_kwargs)
    result = fid_for_generators(generators, networks, settings, real=real_stats, batch=batch, cache=cache,
                                progress=progress)
    metrics = {**result.metrics(), **note, "evaluation": _evaluation_entry(networks, generators)}
    return _with_published(run, run.merge_metrics(metrics)) if run is not None else metrics


# ------------------------------------------------------------------------------- all


def eval_all(out_dir: PathLike, networks: EvalNetworks, *, real: Optional[PathLike] = None, use_real: bool = True,
             pretrained: Optional[PathLike] = None, others: Others = Others(), num: int = 5000, seed: int = 0,
             batch: int = 8, cache: Optional[FeatureCache] = None, progress: bool = True,
             **sample_kwargs) -> Tuple[Dict[str, Any], Path]:
    """``guide eval all``: ID, ID_others, FID_pre, ΔFID_real -> metrics.json and report.html.
    Without real statistics the other three are still computed and ΔFID_real is marked as needing
    them (``delta_FID_real_note``)."""
    from guide.evaluate.report import write_report

    run = EraseOutput.open(out_dir)
    real_stats, note = _real_for(real, use_real, networks)  # a bad --real fails before the slow parts
    generators = Generators(run, pretrained, device=networks.device)
    networks.identity(), networks.features(), generators.pretrained(), generators.unlearned()
    id_result = id_for_output(run, networks, generators, others, progress)
    settings = sample_settings_for(run, num, seed, **sample_kwargs)
    fid_result = fid_for_generators(generators, networks, settings, real=real_stats, batch=batch, cache=cache,
                                    progress=progress)
    merged = _with_published(run, run.merge_metrics({**id_result.metrics(), **fid_result.metrics(), **note,
                                                     "evaluation": _evaluation_entry(networks, generators)}))
    return merged, write_report(run, merged)
