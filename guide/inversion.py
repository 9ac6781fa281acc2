"""GOAE inversion of an aligned face crop: ``w_u = E(resize_256(crop)) + w_avg``, as GUIDE does it.

GUIDE's ``image_to_tensor`` resizes the 512x512 crop with ``PIL.Image.resize((256, 256))`` and no
``resample`` argument, then maps ``x / 127.5 - 1``. Since Pillow 7.0 (GUIDE's environment pins
torchvision 0.16, i.e. Pillow >= 8 in practice) the default filter of ``Image.resize`` for RGB images
is **bicubic** (nearest only for modes "1", "P" and ``I;16``), so :func:`encoder_input` passes
``Image.Resampling.BICUBIC`` explicitly -- the same pixels, without relying on a default. The
encoder's own input size (256 for GOAE, smaller for test configurations) is used.

``w_avg_ffhqrebalanced512-128.pt`` holds a ``[14, 512]`` tensor (GUIDE does
``torch.load(...).unsqueeze(0)``); :func:`load_w_avg` returns ``[1, num_ws, w_dim]`` and also
accepts ``[1, 14, 512]`` and a single ``[512]`` row (repeated to ``num_ws`` rows).

GUIDE never calls ``encoder.eval()``, so its inversion runs with live DropPath (0 -> 0.2) and
cross-attention dropout (0.1): its w_u is one random draw under its seed. Ours is deterministic
(the eval-mode result) by default; ``seed=`` (``guide erase --inversion stochastic``) makes one
such draw with the encoder built stochastic (:func:`load_encoder` ``stochastic=True``), from
torch's RNG seeded with ``seed`` inside :func:`torch.random.fork_rng` (the caller's RNG state is
left alone). The draw follows the reference's distributions, not its random stream. A folder of
photos is inverted in one batch, as the reference does (:func:`invert_photos`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import torch
from PIL import Image

from guide.io.errors import CorruptCheckpointError
from guide.imageio import uint8_to_tensor

__all__ = [
    "ENCODER_FILE",
    "InversionModels",
    "PhotoModels",
    "W_AVG_FILE",
    "aligned_note",
    "encoder_input",
    "invert",
    "invert_photo",
    "invert_photos",
    "latent_record",
    "load_encoder",
    "load_inversion_models",
    "load_w_avg",
    "save_latent",
]

ENCODER_FILE = "encoder_FFHQ.pt"
W_AVG_FILE = "w_avg_ffhqrebalanced512-128.pt"
NUM_WS = 14
W_DIM = 512
PathLike = Union[str, "os.PathLike[str]"]
Device = Union[str, torch.device]


def _encoder_size(encoder: torch.nn.Module) -> int:
    config = getattr(encoder, "config", None)
    return int(config.swin.img_size) if config is not None else 256


def encoder_input(image: Image.Image, size: int = 256, device: Device = "cpu") -> torch.Tensor:
    """``[1, 3, size, size]`` in [-1, 1] from an aligned RGB crop: bicubic PIL resize, ``x / 127.5 - 1``."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return uint8_to_tensor(rgb, device=device)


def _as_input(image_or_aligned: Any, size: int, device: Device) -> torch.Tensor:
    image = getattr(image_or_aligned, "image", image_or_aligned)  # AlignedPhoto -> its crop
    if isinstance(image, Image.Image):
        return encoder_input(image, size, device)
    if isinstance(image, torch.Tensor):
        x = image.unsqueeze(0) if image.ndim == 3 else image
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an image tensor [N, 3, H, W] in [-1, 1], got {list(image.shape)}")
        x = x.to(device=device, dtype=torch.float32)
        if x.shape[-2:] != (size, size):
            raise ValueError(f"image tensor must be {size}x{size} (the encoder's input), got {list(x.shape[-2:])}")
        return x
    raise TypeError(f"expected a PIL image, an AlignedPhoto or an image tensor, got {type(image).__name__}")


def is_stochastic(encoder: torch.nn.Module) -> bool:
    """Whether ``encoder`` has the reference's DropPath / dropout layers (live in train mode)."""
    return bool(getattr(getattr(encoder, "config", None), "stochastic", False))


def _stochastic_offsets(encoder: torch.nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    """One train-mode forward (live DropPath / dropout) from torch's RNG seeded with ``seed``;
    the caller's RNG state and the encoder's mode are restored afterwards."""
    if not is_stochastic(encoder):
        raise ValueError("stochastic inversion needs an encoder built with its DropPath/dropout layers "
                         "(load_encoder(..., stochastic=True) or GOAEConfig(stochastic=True))")
    cuda = [x.device.index if x.device.index is not None else torch.cuda.current_device()] \
        if x.device.type == "cuda" else []
    was_training = encoder.training
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(seed))
        encoder.train()
        try:
            offsets, _ = encoder(x)
        finally:
            encoder.train(was_training)
    return offsets


@torch.no_grad()
def invert(
    image_or_aligned: Any, encoder: torch.nn.Module, w_avg: torch.Tensor, device: Device = "cpu",
    *, seed: Optional[int] = None,
) -> torch.Tensor:
    """``w_u`` ``[N, 14, 512]`` of aligned crops: encoder offsets + ``w_avg``.

    ``image_or_aligned``: the aligned 512x512 crop (PIL), an :class:`~guide.preprocess.AlignedPhoto`,
    an encoder-sized tensor ``[N, 3, 256, 256]`` in [-1, 1], or a list of those (one batch, N rows).
    ``w_avg``: ``[1, 14, 512]`` (see :func:`load_w_avg`). ``seed``: None for the deterministic
    (eval-mode) result; else the reference's stochastic inversion, one draw seeded by ``seed``
    (see the module docstring).
    """
    device = torch.device(device)
    size = _encoder_size(encoder)
    items = image_or_aligned if isinstance(image_or_aligned, (list, tuple)) else [image_or_aligned]
    x = torch.cat([_as_input(item, size, device) for item in items])
    offsets = encoder(x)[0] if seed is None else _stochastic_offsets(encoder, x, seed)
    w_avg = _check_w_avg(w_avg.to(device=device, dtype=offsets.dtype), offsets.shape[1:])
    return offsets + w_avg


def _check_w_avg(w_avg: torch.Tensor, shape) -> torch.Tensor:
    if w_avg.ndim == 2:
        w_avg = w_avg.unsqueeze(0)
    if tuple(w_avg.shape[1:]) != tuple(shape) or w_avg.shape[0] != 1:
        raise ValueError(
            f"w_avg of shape {list(w_avg.shape)} does not fit the encoder's output [N, {shape[0]}, {shape[1]}]")
    return w_avg


def load_w_avg(path: PathLike, device: Device = "cpu", num_ws: int = NUM_WS, w_dim: int = W_DIM) -> torch.Tensor:
    """``[1, num_ws, w_dim]`` float32 average latent from a ``torch.save``-d tensor (safe loading).

    Accepts ``[num_ws, w_dim]`` (GUIDE's file), ``[1, num_ws, w_dim]`` or ``[w_dim]``; any other
    shape (checked before anything is expanded), non-finite values, or a file that does not
    hold a float tensor raise a one-line :class:`~guide.io.errors.CorruptCheckpointError`.
    """
    from guide.io.state_files import load_state_file

    value = load_state_file(path, device=device)
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise CorruptCheckpointError(
            f"{path}: expected a float tensor [{num_ws}, {w_dim}] (average latent), got {type(value).__name__}")
    if tuple(value.shape) not in ((w_dim,), (num_ws, w_dim), (1, num_ws, w_dim)):
        raise CorruptCheckpointError(
            f"{path}: average latent has shape {list(value.shape)}, expected [{num_ws}, {w_dim}]")
    if not bool(torch.isfinite(value).all()):
        raise CorruptCheckpointError(f"{path}: average latent holds NaN or infinity")
    return value.detach().to(torch.float32).reshape(1, -1, w_dim).expand(1, num_ws, w_dim).clone()


def _latent_dims(encoder: Any) -> tuple:
    """(num_ws, w_dim) of the encoder's latents (GOAE: 14, 512)."""
    config = getattr(encoder, "config", None)
    return getattr(encoder, "num_ws", NUM_WS), int(getattr(config, "w_dim", W_DIM))


def load_encoder(path: PathLike, device: Device = "cpu", stochastic: bool = False) -> torch.nn.Module:
    """The GOAE encoder from ``encoder_FFHQ.pt`` on ``device`` (eval mode); damage -> one-line error.
    ``stochastic``: with the reference's DropPath / dropout layers (see :func:`invert` ``seed``)."""
    from goae import GOAEConfig, GOAEncoder

    try:
        config = GOAEConfig(stochastic=True) if stochastic else None
        return GOAEncoder.from_checkpoint(path, device=device, config=config)
    except (ValueError, FileNotFoundError) as exc:
        raise CorruptCheckpointError(" ".join(str(exc).split())[:400]) from None


@dataclass
class InversionModels:
    """The encoder, the average latent and the files they came from."""

    encoder: torch.nn.Module
    w_avg: torch.Tensor
    encoder_path: Path
    w_avg_path: Path


def load_inversion_models(checkpoint_dir: PathLike, device: Device = "cpu", stochastic: bool = False
                          ) -> InversionModels:
    """Encoder and ``w_avg`` from the checkpoint directory; a missing file is reported (one line) before any
    loading. ``stochastic``: the encoder with its DropPath/dropout layers (see :func:`invert`)."""
    from guide.checkpoints import require_checkpoint

    encoder_path = require_checkpoint(ENCODER_FILE, checkpoint_dir)
    w_avg_path = require_checkpoint(W_AVG_FILE, checkpoint_dir)
    encoder = load_encoder(encoder_path, device, stochastic=stochastic)
    w_avg = load_w_avg(w_avg_path, device, *_latent_dims(encoder))
    return InversionModels(encoder, w_avg, encoder_path, w_avg_path)


class PhotoModels:
    """The GOAE encoder and the MTCNN face detector for inverting many photos: each is loaded on
    first use (per checkpoint folder / device) and then kept. A load that fails is not kept, so
    every photo reports the same one-line error (e.g. a missing ``encoder_FFHQ.pt``). ``encoder``:
    a ready-made encoder to use instead of the checkpoint file (demos, tests)."""

    def __init__(self, encoder: Optional[torch.nn.Module] = None) -> None:
        self._encoders: Dict[tuple, torch.nn.Module] = {}
        self._detectors: Dict[str, Any] = {}
        self._given = encoder

    def encoder(self, checkpoint_dir: PathLike, device: Device = "cpu", stochastic: bool = False) -> torch.nn.Module:
        """The encoder from ``checkpoint_dir`` on ``device`` (loaded once; ``stochastic``: see
        :func:`load_encoder`). An encoder given to the constructor is used for every folder."""
        from guide.checkpoints import require_checkpoint

        if self._given is not None:
            return self._given.to(device)
        key = (str(checkpoint_dir), str(device), bool(stochastic))
        if key not in self._encoders:
            self._encoders[key] = load_encoder(require_checkpoint(ENCODER_FILE, checkpoint_dir), device,
                                               stochastic=stochastic)
        return self._encoders[key]

    def detector(self, device: Device = "cpu") -> Any:
        """A :class:`~guide.identity.detect.FaceDetector` on ``device`` (built once)."""
        key = str(device)
        if key not in self._detectors:
            from guide.identity.detect import FaceDetector

            self._detectors[key] = FaceDetector(device)
        return self._detectors[key]


def invert_photo(photo: Any, **options: Any) -> torch.Tensor:
    """``w_u`` ``[1, 14, 512]`` of one photo: :func:`invert_photos` of ``[photo]`` (same keywords)."""
    return invert_photos([photo], **options)


def invert_photos(
    photos: Sequence[Any],
    *,
    w_avg: Optional[torch.Tensor] = None,
    checkpoint_dir: Optional[PathLike] = None,
    device: Device = "cpu",
    face_index: Optional[int] = None,
    aligned: bool = False,
    encoder: Optional[torch.nn.Module] = None,
    detector: Optional[Any] = None,
    models: Optional[PhotoModels] = None,
    seed: Optional[int] = None,
) -> torch.Tensor:
    """``[N, 14, 512]``: the photos aligned (unless ``aligned``), inverted in ONE encoder batch (as
    the reference inverts a folder; this matters for the stochastic inversion's draws), plus ``w_avg``.

    ``photos``: paths, PIL images or arrays (see :func:`guide.preprocess.align_photo`). ``w_avg``
    and ``encoder`` default to the files in ``checkpoint_dir`` (default:
    :func:`guide.paths.resolve_checkpoint_dir`); pass them (and a ``detector``), or one
    :class:`PhotoModels` as ``models``, to invert many photos without reloading. ``seed``:
    stochastic inversion (see :func:`invert`).
    """
    from guide.checkpoints import require_checkpoint
    from guide.paths import resolve_checkpoint_dir

    folder = resolve_checkpoint_dir(checkpoint_dir)
    stochastic = seed is not None
    if encoder is None:
        if models is not None:
            encoder = models.encoder(folder, device, stochastic=stochastic)
        else:
            encoder = load_encoder(require_checkpoint(ENCODER_FILE, folder), device, stochastic=stochastic)
    if w_avg is None:
        w_avg = load_w_avg(require_checkpoint(W_AVG_FILE, folder), device, *_latent_dims(encoder))
    crops = []
    for photo in photos:
        if aligned:
            from guide.imageio import load_image

            crops.append(load_image(photo).image)
        else:
            from guide.preprocess import align_photo

            if detector is None and models is not None:
                detector = models.detector(device)
            crops.append(align_photo(photo, face_index, detector=detector, device=device).image)
    return invert(crops if len(crops) > 1 else crops[0], encoder, w_avg, device, seed=seed)


def aligned_note(photo: PathLike) -> Optional[str]:
    """One line when a photo (or every photo of a folder) is 512x512, the size of an aligned crop,
    and is about to be detected and re-aligned; None otherwise (unreadable files are left to the loader)."""
    path = Path(photo)
    if path.is_dir():
        from guide.erase import folder_photos

        try:
            paths = folder_photos(path)
        except Exception:  # noqa: BLE001 - the loader reports it
            return None
    else:
        paths = [path]
    try:
        sizes = set()
        for p in paths:
            with Image.open(p) as img:
                sizes.add(img.size)
    except Exception:  # noqa: BLE001 - the loader reports it
        return None
    if sizes != {(512, 512)}:
        return None
    what = "every photo in " + str(path) + " is" if path.is_dir() else f"{path} is"
    return (f"note: {what} 512x512 and may already be an aligned crop; pass --aligned to feed it to the encoder "
            "as is (the reference does) instead of detecting and re-aligning the face")


def latent_record(
    w: torch.Tensor,
    camera: Optional[torch.Tensor],
    *,
    source: str,
    sha256: str,
    encoder_sha256: str,
    extra: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """The dict ``guide invert`` saves: ``w`` [1,14,512], ``camera`` [1,25] and provenance.

    Only tensors and plain values, so it loads with ``torch.load(..., weights_only=True)``.
    """
    import guide

    record: Dict[str, Any] = {
        "w": w.detach().to("cpu", torch.float32).contiguous(),
        "camera": None if camera is None else camera.detach().to("cpu", torch.float32).reshape(1, -1).contiguous(),
        "source": str(source),
        "sha256": sha256,
        "encoder_sha256": encoder_sha256,
        "guide_version": guide.__version__,
    }
    record.update(extra or {})
    return record


def save_latent(path: PathLike, record: Dict[str, Any]) -> None:
    """``torch.save`` ``record`` to ``path`` atomically (never a half-written file under that name)."""
    from guide.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(record, tmp)
