"""`guide eval`: the paper's four numbers for an erase output, and report.html."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, Tuple

import click

from guide.commands._options import SEED, FiniteFloat, checkpoints_option, device_option

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
    f = device_option()(f)
    f = checkpoints_option()(f)
    return f


def _id_options(f):
    f = click.option("--detection", type=click.Choice(["reference", "facenet"]), default="reference",
                     show_default=True, help="MTCNN thresholds on renders: the reference evaluation's 0.15/0.25/0.35, "
                     "or facenet-pytorch's 0.6/0.7/0.7.")(f)
    f = click.option("--no-face", type=click.Choice(["fixed", "skip", "error"]), default="fixed", show_default=True,
                     help="A render without a detected face: align it from fixed FFHQ landmarks, skip the pair, "
                          "or stop.")(f)
    f = click.option("--others-seed", type=SEED, default=None, help="Seed of the random other identities.")(f)
    f = click.option("--others-random", type=click.IntRange(0, MAX_IDENTITIES), default=None,
                     help="ID_others from this many random identities (0: no ID_others). Default: the other "
                          "photos of a folder erasure (the reference's protocol), else 4 random identities.")(f)
    f = click.option("--others-photos", type=_ANY, multiple=True,
                     help="ID_others from these photos (inverted with GOAE); repeatable.")(f)
    f = click.option("--others-latents", type=_FILE, multiple=True,
                     help="ID_others from latents in these .pt files ([K,14,512], or dicts with w/ws/w_u); "
                          "repeatable.")(f)
    return f


def _fid_options(f):
    f = click.option("--sampling", type=click.Choice(["paper", "paired"]), default="paper", show_default=True,
                     help="paper: the reference's protocol, independent backbone noise and ray jitter for the two "
                          "generators (comparable with published numbers); paired: shared constant noise and "
                          "fixed rays, lower variance but systematically lower FID_pre, not comparable.")(f)
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
    f = click.option("--no-real", is_flag=True, help="Skip ΔFID_real (also skipped, with a note, when no real "
                     "statistics are found).")(f)
    f = click.option("--real", type=_ANY, default=None,
                     help="Real Inception statistics: features [M,2048] .npy (e.g. the reference's "
                          "ffhq_real_feat.npy) or .npz with mu/sigma (default: ffhq_real_feat.npy in the "
                          "checkpoints folder).")(f)
    return f


def _networks(checkpoints, device, random_networks, no_face="fixed", detection="reference"):
    from guide.devices import resolve_device
    from guide.evaluate.pipeline import EvalNetworks

    return EvalNetworks(checkpoints, resolve_device(device), random_weights=random_networks, no_face=no_face,
                        detection=detection)


def _others(latents, photos, count, seed):
    from guide.evaluate.identity import OTHERS_SEED, Others

    if latents and photos:
        raise GuideError("give other identities either as --others-latents or as --others-photos, not both")
    if latents:
        return Others("latents", paths=tuple(str(p) for p in latents))
    if photos:
        return Others("photos", paths=tuple(str(p) for p in photos))
    seed = OTHERS_SEED if seed is None else seed
    if count is None:
        return Others("auto", seed=seed)
    if count == 0:
        return Others("none", count=0)
    return Others("random", count=count, seed=seed)


def _fid_kwargs(real, no_real, num, batch, seed, cache_dir, no_cache, truncation, truncation_cutoff,
                sampling) -> Dict[str, Any]:
    from guide.evaluate.cache import FeatureCache, resolve_cache_dir

    return dict(real=real, use_real=not no_real, num=num, batch=batch, seed=seed,
                cache=FeatureCache(None if no_cache else resolve_cache_dir(cache_dir)),
                truncation_psi=truncation, truncation_cutoff=truncation_cutoff, sampling=sampling)


_SHOWN: Tuple[Tuple[str, str], ...] = (("ID", "{:.4f}"), ("ID_others", "{:.4f}"), ("FID_pre", "{:.6g}"),
                                       ("delta_FID_real", "{:+.6g}"))


def _echo_metrics(metrics: Dict[str, Any], keys) -> None:
    published = (metrics.get("published") or {}).get("values") or {}
    for key, pattern in _SHOWN:
        if key in keys:
            value, theirs = metrics.get(key), published.get(key)
            line = f"{key:<15} {'n/a' if value is None else pattern.format(value)}"
            if theirs is not None:
                line += f"   (published {pattern.format(theirs)})"
            click.echo(line)
    if "delta_FID_real" in keys and metrics.get("delta_FID_real") is None and metrics.get("delta_FID_real_note"):
        click.echo(f"note: {metrics['delta_FID_real_note']}", err=True)
    missed = (metrics.get("identity") or {}).get("images_without_detected_face")
    if "ID" in keys and missed:
        click.echo(f"note: {missed} render(s) without a detected face (policy "
                   f"{metrics['identity'].get('no_face_policy')})", err=True)
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
    better) and of other identities (higher is better; by default the other photos of a folder
    erasure, else 4 random identities). FID_pre: FID between 5000 samples of the pretrained and
    the unlearned generator, same z and yaw, independent noise (the paper's protocol; --sampling
    paired for the lower-variance variant). ΔFID_real: FID(real, unlearned) - FID(real, pretrained).
    Published values are shown beside ours where the reference reports them. Needs CurricularFace_Backbone.pth and
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
                    detection, checkpoints, device, no_progress, random_networks) -> None:
    """ID and ID_others of a `guide erase` output (merged into OUT_DIR/metrics.json)."""
    from guide.evaluate.pipeline import eval_id

    networks = _networks(checkpoints, device, random_networks, no_face, detection)
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
                     truncation, truncation_cutoff, sampling, checkpoints, device, no_progress,
                     random_networks) -> None:
    """FID_pre and ΔFID_real of OUT_DIR, or of --pretrained G1 --unlearned G2."""
    from guide.evaluate.pipeline import eval_fid

    if out_dir is None and (pretrained is None or unlearned is None):
        raise GuideError("give an erase output folder, or both --pretrained and --unlearned")
    networks = _networks(checkpoints, device, random_networks)
    metrics = eval_fid(out_dir, networks, pretrained=pretrained, unlearned=unlearned, progress=not no_progress,
                       **_fid_kwargs(real, no_real, num, batch, seed, cache_dir, no_cache, truncation,
                                     truncation_cutoff, sampling))
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
                     detection, real, no_real, num, batch, seed, cache_dir, no_cache, truncation, truncation_cutoff,
                     sampling, checkpoints, device, no_progress, random_networks) -> None:
    """All four numbers -> OUT_DIR/metrics.json (merged) and OUT_DIR/report.html. Without real
    statistics ID, ID_others and FID_pre are still computed and ΔFID_real is marked n/a."""
    from guide.evaluate.pipeline import eval_all

    networks = _networks(checkpoints, device, random_networks, no_face, detection)
    metrics, report = eval_all(out_dir, networks, pretrained=pretrained,
                               others=_others(others_latents, others_photos, others_random, others_seed),
                               progress=not no_progress,
                               **_fid_kwargs(real, no_real, num, batch, seed, cache_dir, no_cache, truncation,
                                             truncation_cutoff, sampling))
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
