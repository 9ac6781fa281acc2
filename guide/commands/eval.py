"""`guide eval`: the paper's four numbers for an erase output, and report.html."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, Tuple

import click

from guide.commands._options import SEED, FiniteFloat, checkpoints_option

from guide.errors import GuideError
from guide.limits import MAX_FID_SAMPLES, MAX_IDENTITIES, MAX_LATENT_BATCH

_FOLDER = click.Path(file_okay=False, path_type=Path)
_FILE = click.Path(dir_okay=False, path_type=Path)
_ANY = click.Path(path_type=Path)


def _network_options(f):
    """--checkpoints, --device, --no-progress and the hidden --random-networks."""
    f = click.option("--random-networks", is_flag=True, hidden=True,
                     help="Random-weight IR-101 and Inception (tests/demos; meaningless numbers).")(f)
    f = click.option("--no-progress", is_flag=True, help="No progress bars.")(f)
    f = click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")(f)
    f = checkpoints_option()(f)
    return f


def _id_options(f):
    f = click.option("--no-face", type=click.Choice(["fixed", "skip", "error"]), default="fixed", show_default=True,
                     help="A render without a detected face: align it from fixed FFHQ landmarks, skip the pair, "
                          "or stop.")(f)
    f = click.option("--others-seed", type=SEED, default=None, help="Seed of the random other identities.")(f)
    f = click.option("--others-random", type=click.IntRange(0, MAX_IDENTITIES), default=4, show_default=True,
                     help="ID_others from this many random identities (0: no ID_others).")(f)
    f = click.option("--others-photos", type=_ANY, multiple=True,
                     help="ID_others from these photos (inverted with GOAE); repeatable.")(f)
    f = click.option("--others-latents", type=_FILE, multiple=True,
                     help="ID_others from latents in these .pt files ([K,14,512], or dicts with w/ws/w_u); "
                          "repeatable.")(f)
    return f


def _fid_options(f):
    f = click.option("--noise-mode", type=click.Choice(["const", "random"]), default="const", show_default=True,
                     help="Backbone noise of the samples (const: reproducible and cacheable).")(f)
    f = click.option("--truncation-cutoff", type=click.IntRange(0), default=14, show_default=True)(f)
    f = click.option("--truncation", type=FiniteFloat(), default=1.0, show_default=True, help="Truncation psi.")(f)
    f = click.option("--no-cache", is_flag=True, help="Do not read or write cached features.")(f)
    f = click.option("--cache", "cache_dir", type=_FOLDER, default=None,
                     help="Feature cache (default: $GUIDE_FID_CACHE, else ~/.cache/guide/fid).")(f)
    f = click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the samples.")(f)
    f = click.option("--batch", type=click.IntRange(1, MAX_LATENT_BATCH), default=8, show_default=True,
                     help="Images per batch.")(f)
    f = click.option("--num", type=click.IntRange(2, MAX_FID_SAMPLES), default=5000, show_default=True,
                     help="Samples per generator (the paper: 5000).")(f)
    f = click.option("--no-real", is_flag=True, help="Skip ΔFID_real (no real statistics needed).")(f)
    f = click.option("--real", type=_ANY, default=None,
                     help="Real Inception statistics: features [M,2048] .npy (e.g. the reference's "
                          "ffhq_real_feat.npy) or .npz with mu/sigma (default: ffhq_real_feat.npy in the "
                          "checkpoints folder).")(f)
    return f


def _networks(checkpoints, device, random_networks, no_face="fixed"):
    from guide.evaluate.pipeline import EvalNetworks

    from guide.devices import resolve_device

    resolve_device(device)
    return EvalNetworks(checkpoints, device, random_weights=random_networks, no_face=no_face)


def _others(latents, photos, count, seed):
    from guide.evaluate.identity import OTHERS_SEED, Others

    if latents and photos:
        raise GuideError("give other identities either as --others-latents or as --others-photos, not both")
    if latents:
        return Others("latents", paths=tuple(str(p) for p in latents))
    if photos:
        return Others("photos", paths=tuple(str(p) for p in photos))
    if count == 0:
        return Others("none", count=0)
    return Others("random", count=count, seed=OTHERS_SEED if seed is None else seed)


def _fid_kwargs(real, no_real, num, batch, seed, cache_dir, no_cache, truncation, truncation_cutoff,
                noise_mode) -> Dict[str, Any]:
    from guide.evaluate.cache import FeatureCache, resolve_cache_dir

    return dict(real=real, use_real=not no_real, num=num, batch=batch, seed=seed,
                cache=FeatureCache(None if no_cache else resolve_cache_dir(cache_dir)),
                truncation_psi=truncation, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)


_SHOWN: Tuple[Tuple[str, str], ...] = (("ID", "{:.4f}"), ("ID_others", "{:.4f}"), ("FID_pre", "{:.6g}"),
                                       ("delta_FID_real", "{:+.6g}"))


def _echo_metrics(metrics: Dict[str, Any], keys) -> None:
    for key, pattern in _SHOWN:
        if key in keys:
            value = metrics.get(key)
            click.echo(f"{key:<15} {'n/a' if value is None else pattern.format(value)}")
    if (metrics.get("evaluation") or {}).get("random_networks"):
        click.echo("(random-weight networks: these numbers are meaningless)", err=True)


def _one_line_errors(f):
    """ValueError from settings (e.g. a bad sample count) as a GuideError."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except ValueError as exc:
            raise GuideError(str(exc)) from None

    return wrapper


@click.group("eval")
def eval_group() -> None:
    """Measure an erasure: ID, ID_others, FID_pre, ΔFID_real, and a report.

    ID / ID_others: CurricularFace similarity of before/after renders of the erased (lower is
    better) and of other identities (higher is better). FID_pre: FID between 5000 samples of
    the pretrained and the unlearned generator, same seeds. ΔFID_real: FID(real, unlearned) -
    FID(real, pretrained). Needs CurricularFace_Backbone.pth and
    pt_inception-2015-12-05-6726825d.pth in the checkpoints folder (never downloaded).
    Sample features are cached, so re-evaluating is cheap.
    """


@eval_group.command("id")
@click.argument("out_dir", type=_ANY)
@click.option("--pretrained", type=_ANY, default=None,
              help="Source generator (.pkl or ours; default: the one named in OUT_DIR/config.json).")
@_id_options
@_network_options
@_one_line_errors
def eval_id_command(out_dir, pretrained, others_latents, others_photos, others_random, others_seed, no_face,
                    checkpoints, device, no_progress, random_networks) -> None:
    """ID and ID_others of a `guide erase` output (merged into OUT_DIR/metrics.json)."""
    from guide.evaluate.pipeline import eval_id

    networks = _networks(checkpoints, device, random_networks, no_face)
    metrics = eval_id(out_dir, networks, pretrained=pretrained,
                      others=_others(others_latents, others_photos, others_random, others_seed),
                      progress=not no_progress)
    _echo_metrics(metrics, ("ID", "ID_others"))
    click.echo(f"wrote {Path(out_dir) / 'metrics.json'}", err=True)


@eval_group.command("fid")
@click.argument("out_dir", type=_ANY, required=False)
@click.option("--pretrained", type=_ANY, default=None,
              help="Pretrained generator (.pkl or ours; default: the source named in OUT_DIR/config.json).")
@click.option("--unlearned", type=_ANY, default=None,
              help="Unlearned generator (default: OUT_DIR's generator).")
@_fid_options
@_network_options
@_one_line_errors
def eval_fid_command(out_dir, pretrained, unlearned, real, no_real, num, batch, seed, cache_dir, no_cache,
                     truncation, truncation_cutoff, noise_mode, checkpoints, device, no_progress,
                     random_networks) -> None:
    """FID_pre and ΔFID_real of OUT_DIR, or of --pretrained G1 --unlearned G2."""
    from guide.evaluate.pipeline import eval_fid

    if out_dir is None and (pretrained is None or unlearned is None):
        raise GuideError("give an erase output folder, or both --pretrained and --unlearned")
    networks = _networks(checkpoints, device, random_networks)
    metrics = eval_fid(out_dir, networks, pretrained=pretrained, unlearned=unlearned, progress=not no_progress,
                       **_fid_kwargs(real, no_real, num, batch, seed, cache_dir, no_cache, truncation,
                                     truncation_cutoff, noise_mode))
    _echo_metrics(metrics, ("FID_pre", "delta_FID_real"))
    if out_dir is not None:
        click.echo(f"wrote {Path(out_dir) / 'metrics.json'}", err=True)


@eval_group.command("all")
@click.argument("out_dir", type=_ANY)
@click.option("--pretrained", type=_ANY, default=None,
              help="Source generator (default: the one named in OUT_DIR/config.json).")
@_id_options
@_fid_options
@_network_options
@_one_line_errors
def eval_all_command(out_dir, pretrained, others_latents, others_photos, others_random, others_seed, no_face,
                     real, no_real, num, batch, seed, cache_dir, no_cache, truncation, truncation_cutoff,
                     noise_mode, checkpoints, device, no_progress, random_networks) -> None:
    """All four numbers -> OUT_DIR/metrics.json (merged) and OUT_DIR/report.html."""
    from guide.evaluate.pipeline import eval_all

    networks = _networks(checkpoints, device, random_networks, no_face)
    metrics, report = eval_all(out_dir, networks, pretrained=pretrained,
                               others=_others(others_latents, others_photos, others_random, others_seed),
                               progress=not no_progress,
                               **_fid_kwargs(real, no_real, num, batch, seed, cache_dir, no_cache, truncation,
                                             truncation_cutoff, noise_mode))
    _echo_metrics(metrics, ("ID", "ID_others", "FID_pre", "delta_FID_real"))
    click.echo(f"wrote {Path(out_dir) / 'metrics.json'} and {report}", err=True)


@eval_group.command("report")
@click.argument("out_dir", type=_ANY)
def eval_report_command(out_dir) -> None:
    """(Re)write OUT_DIR/report.html from OUT_DIR/metrics.json without computing anything."""
    from guide.evaluate.erase_output import EraseOutput
    from guide.evaluate.report import write_report

    path = write_report(EraseOutput.open(out_dir, needs=()))
    click.echo(f"wrote {path}", err=True)


command = eval_group
