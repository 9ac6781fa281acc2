"""`guide invert`: photo -> aligned crop -> GOAE latent w (+ the photo's EG3D camera)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from guide.commands._options import checkpoints_option, device_option

from guide.imageio import DEFAULT_MAX_PIXELS


def _aligned_input(photo: Path, max_pixels: int):
    """(crop, camera, extra metadata, notes) for a photo that is already an aligned square crop."""
    from guide.cameras import conditioning_params
    from guide.errors import GuideError
    from guide.imageio import load_image

    loaded = load_image(photo, max_pixels=max_pixels)
    width, height = loaded.size
    if width != height:
        raise GuideError(f"--aligned expects a square aligned crop, but {photo} is {width}x{height}; "
                         "leave out --aligned to detect and crop the face")
    notes = list(loaded.notes)
    if width != 512:
        notes.append(f"aligned input is {width}x{height}, not 512x512; it is resized for the encoder as is")
    notes.append("--aligned: no face detection; the camera is the frontal one")
    extra = {"aligned": True, "face_index": None, "num_faces": None, "pose": None}
    return loaded.image, conditioning_params(), extra, notes


@click.command("invert")
@click.argument("photo", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Latent file to write (.pt).")
@checkpoints_option()
@device_option("Device for detection and the encoder: ")
@click.option("--aligned", is_flag=True, help="PHOTO is already an aligned 512x512 crop: skip detection and cropping.")
@click.option("--inversion", "inversion_mode", type=click.Choice(["deterministic", "stochastic"]),
              default="deterministic", show_default=True,
              help="stochastic: GOAE with live DropPath/dropout as the reference runs it (one draw, seeded by --seed).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of a stochastic inversion.")
@click.option("--face-index", type=click.IntRange(min=0), default=None,
              help="Which face to use, most prominent first (default 0).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse photos with more pixels than this (decompression-bomb guard).")
def invert(photo: Path, output: Path, checkpoints: Optional[Path], device: str, aligned: bool,
           inversion_mode: str, seed: int, face_index: Optional[int], max_pixels: int) -> None:
    """Invert the face in PHOTO into EG3D's latent space with the GOAE encoder.

    Detects and aligns the face (as `guide preprocess`; --aligned skips that for a ready crop),
    encodes the crop resized to 256x256 and adds the generator's average latent: w = E(x) + w_avg.
    Writes OUTPUT with torch.save: {'w': [1,14,512], 'camera': [1,25] (the photo's viewpoint),
    'source', 'sha256' (of PHOTO), 'encoder_sha256', 'guide_version', ...}. Needs encoder_FFHQ.pt
    and w_avg_ffhqrebalanced512-128.pt in the checkpoint directory.
    """
    from guide import inversion
    from guide.checkpoints import require_checkpoint
    from guide.commands.preprocess import check_output, describe
    from guide.devices import resolve_device
    from guide.io.hashing import sha256_file
    from guide.paths import resolve_checkpoint_dir

    check_output(output, {".pt", ".pth"}, inputs=[photo])
    device = resolve_device(device)
    checkpoint_dir = resolve_checkpoint_dir(checkpoints)
    for name in (inversion.ENCODER_FILE, inversion.W_AVG_FILE):
        require_checkpoint(name, checkpoint_dir)  # report a missing file before any slow work

    if aligned:
        crop, camera, extra, notes = _aligned_input(photo, max_pixels)
    else:
        note = inversion.aligned_note(photo)
        if note:
            click.echo(note, err=True)
        from guide.preprocess import align_photo

        result = align_photo(photo, face_index, device=device, max_pixels=max_pixels)
        click.echo(describe(result))
        crop, camera, notes = result.image, result.camera, list(result.notes)
        extra = {
            "aligned": False,
            "face_index": result.face_index,
            "num_faces": result.num_faces,
            "pose": {k: float(v) for k, v in result.pose.degrees().items()},
            "matrix": [[float(v) for v in row] for row in result.matrix],
            "landmarks": [[float(v) for v in row] for row in result.landmarks],
        }
    stochastic = inversion_mode == "stochastic"
    models = inversion.load_inversion_models(checkpoint_dir, device, stochastic=stochastic)
    w = inversion.invert(crop, models.encoder, models.w_avg, device, seed=seed if stochastic else None)
    extra.update({"w_avg_sha256": sha256_file(models.w_avg_path), "notes": notes,
                  "inversion": inversion_mode, "seed": seed if stochastic else None})
    record = inversion.latent_record(
        w, camera, source=str(photo), sha256=sha256_file(photo),
        encoder_sha256=sha256_file(models.encoder_path), extra=extra)
    inversion.save_latent(output, record)
    for note in notes:
        click.echo(f"note: {note}")
    click.echo(f"wrote {output}: w {list(record['w'].shape)}, camera {list(record['camera'].shape)}")


command = invert
