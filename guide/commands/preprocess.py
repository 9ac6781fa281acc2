"""`guide preprocess`: align and crop the face of any photo to the 512x512 EG3D/GOAE framing."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from guide.commands._options import device_option

from guide.imageio import DEFAULT_MAX_PIXELS

IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def check_output(path: Path, suffixes, inputs=(), also=()) -> None:
    """One-line error unless ``path`` has an allowed suffix, its folder exists, and neither it nor
    the files in ``also`` (e.g. its sidecar) is a directory or one of ``inputs`` (checked before any work)."""
    from guide.errors import GuideError
    from guide.io.folders import refuse_overwriting_inputs

    if path.suffix.lower() not in suffixes:
        raise GuideError(f"output {path} must end in {' or '.join(sorted(suffixes))}")
    if not path.parent.is_dir():
        raise GuideError(f"output folder {path.parent} does not exist")
    for target in (path, *also):
        if target.is_dir():
            raise GuideError(f"output {target} is a directory")
    refuse_overwriting_inputs((path, *also), inputs)


def describe(result) -> str:
    """One line: how many faces were found and which was used."""
    found = f"found {result.num_faces} face{'s' if result.num_faces != 1 else ''} in {result.source}"
    box = ", ".join(f"{v:.0f}" for v in result.box)
    return f"{found}; used face {result.face_index} (probability {result.probability:.3f}, box {box})"


@click.command("preprocess")
@click.argument("photo", type=click.Path(path_type=Path, dir_okay=True))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Aligned crop to write (.png or .jpg); a JSON sidecar OUTPUT.json is written beside it.")
@click.option("--face-index", type=click.IntRange(min=0), default=None,
              help="Which face to use, most prominent first (default 0).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse photos with more pixels than this (decompression-bomb guard).")
@device_option("Device for face detection: ")
def preprocess(photo: Path, output: Path, face_index: Optional[int], max_pixels: int, device: str) -> None:
    """Detect, align and crop the face in PHOTO to the 512x512 framing EG3D and GOAE expect.

    Writes the crop to OUTPUT and OUTPUT.json with the landmarks (in the photo), the photo -> crop
    matrix, the EG3D camera (25 values) of the photo's viewpoint, the head pose, every detected
    face and notes. Handles any image Pillow reads: first frame of animations, EXIF rotation,
    CMYK / 16-bit / palette / transparency; bad files give a one-line error.
    """
    import json

    from guide.io.atomic import atomic_path, write_text_atomic
    from guide.preprocess import align_photo

    from guide.devices import resolve_device

    device = resolve_device(device)
    sidecar = output.with_suffix(".json")
    check_output(output, IMAGE_SUFFIXES, inputs=[photo], also=[sidecar])
    result = align_photo(photo, face_index, device=device, max_pixels=max_pixels)
    fmt = IMAGE_SUFFIXES[output.suffix.lower()]
    existed = output.exists()
    with atomic_path(output) as tmp:
        result.image.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    try:
        write_text_atomic(sidecar, json.dumps(result.to_json(), indent=2) + "\n")
    except OSError as exc:
        if not existed:
            output.unlink(missing_ok=True)  # no crop without its sidecar
        from guide.errors import GuideError

        raise GuideError(f"cannot write {sidecar}: {exc.strerror or exc}") from None
    click.echo(describe(result))
    for note in result.notes:
        click.echo(f"note: {note}")
    pose = result.pose.degrees()
    angles = f"yaw {pose['yaw_deg']:+.1f} deg, elevation {pose['elevation_deg']:+.1f} deg"
    click.echo(f"wrote {output} and {sidecar} ({angles})")


command = preprocess
