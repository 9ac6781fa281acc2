"""Hyperparameters of one erasure, one dataclass per stage, defaults equal to the reference
(GUIDE's unlearn.py with the paper's flags). The CLI and job files fill these; nothing else
reads raw options."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple


@dataclass
class TargetConfig:
    """UFO: which latent the identity is erased towards."""

    method: str = "extrapolated"  # 'extrapolated' (GUIDE) | 'average' (baseline)
    distance: float = 30.0


@dataclass
class CameraConfig:
    """Cameras of the training renders. Defaults reproduce the reference *as it runs*: it asks
    rendering_kwargs for keys that do not exist (avg_cam_pivot/avg_cam_radius), so it looks at
    [0,0,0] from radius 2.7; EG3D's own FFHQ pivot is [0,0,0.2] (`pivot=(0, 0, 0.2)`)."""

    fov_degrees: float = 18.837
    pivot: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 2.7
    yaw_range: float = math.pi / 12  # training yaw ~ U(-range, range) around the front
    pitch_offset: float = -0.2


@dataclass
class LossConfig:
    """LTU losses. Local: between G(w_u) and G_src(w_t); adjacency: the same on latents moved
    from both by the same random offset; global: LPIPS between G and G_src on random latents."""

    local: bool = True
    local_mse: float = 1e-2
    local_lpips: float = 1.0
    local_id: float = 0.1
    adjacency: bool = True
    adj_mse: float = 1e-2
    adj_lpips: float = 1.0
    adj_id: float = 0.1
    adj_batch: int = 2
    adj_weight: float = 1.0
    adj_alpha_min: float = 0.0
    adj_alpha_max: float = 15.0
    global_preservation: bool = True
    global_weight: float = 1.0
    global_batch: int = 2


@dataclass
class LTUConfig:
    """The fine-tuning loop."""

    iters: int = 1000
    lr: float = 1e-4
    truncation_psi: float = 1.0  # for the random latents of the adjacency / global terms
    truncation_cutoff: Optional[int] = 14
    noise_mode: str = "random"  # the reference's backbone noise is random in every render
    train_mode: bool = True  # the reference keeps G and G_src in train mode (non-fused modconv)
    deterministic_render: bool = False  # fixed sampling jitter (tests); the reference samples randomly
    sr_fp32: bool = False  # on CUDA upstream runs the super-resolution in fp16; True forces fp32
    identity_chunk: int = 2  # identities rendered per forward pass when erasing several (joint mode)
    # Speed options (guide/acceleration.py, docs/performance.md): off until a GPU measures them faster.
    compile: bool = False  # torch.compile the generators' synthesis, renderer and SR
    channels_last: bool = False  # NHWC weights and features in the whole generator and the loss networks
    fused_adam: bool = False  # fused Adam; a non-finite step is masked on the device (no host read per step)
    cuda_graph: bool = False  # capture forward+backward+Adam once as a CUDA graph (CUDA; implies fused Adam)
    losses: LossConfig = field(default_factory=LossConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)


INVERSION_MODES = ("deterministic", "stochastic")
RENDER_MODES = ("paired", "random")
W_AVG_SOURCES = ("file", "mapping")


@dataclass
class InversionConfig:
    """How a photo (or a saved latent) becomes the identity latent w_u."""

    aligned: bool = False  # the photo is already an aligned crop: fed to GOAE as is (the reference's inputs)
    mode: str = "deterministic"  # 'stochastic': GOAE's live DropPath/dropout as the reference runs it, seeded by `seed`
    w_avg: str = "file"  # 'file': w_avg_ffhqrebalanced512-128.pt (needed by photos and latents); 'mapping': G's own

    def __post_init__(self) -> None:
        if self.mode not in INVERSION_MODES:
            raise ValueError(f"inversion mode must be one of {INVERSION_MODES}, got {self.mode!r}")
        if self.w_avg not in W_AVG_SOURCES:
            raise ValueError(f"w_avg must be one of {W_AVG_SOURCES}, got {self.w_avg!r}")


@dataclass
class EraseConfig:
    """Everything that defines one erasure."""

    method: str = "guide"  # 'guide' | 'baseline' (preset of target + losses)
    seed: int = 0
    target: TargetConfig = field(default_factory=TargetConfig)
    ltu: LTUConfig = field(default_factory=LTUConfig)
    inversion: InversionConfig = field(default_factory=InversionConfig)
    # before/after renders for ID: 'paired' (constant noise, fixed rays: pixel-comparable) or 'random'
    # (fresh noise and ray jitter per render, seeded by `seed`, as the reference renders them)
    renders: str = "paired"

    def __post_init__(self) -> None:
        if self.renders not in RENDER_MODES:
            raise ValueError(f"renders must be one of {RENDER_MODES}, got {self.renders!r}")

    @property
    def inversion_seed(self) -> Optional[int]:
        """The seed of a stochastic inversion, None for the deterministic one."""
        return self.seed if self.inversion.mode == "stochastic" else None

    def to_dict(self) -> dict:
        return asdict(self)


def method_preset(method: str) -> EraseConfig:
    """The paper's two settings: GUIDE (extrapolated target d=30, local + adjacency + global)
    and the baseline (average target, local loss only)."""
    config = EraseConfig(method=method)
    if method == "guide":
        return config
    if method == "baseline":
        config.target = TargetConfig(method="average")
        config.ltu.losses.adjacency = False
        config.ltu.losses.global_preservation = False
        return config
    raise ValueError(f"unknown method {method!r}; expected 'guide' or 'baseline'")


@dataclass
class AttackConfig:
    """The optimisation attack of `guide audit`: Adam on a W+ latent through a frozen generator so
    that its render at the photo's camera reproduces the aligned photo (LPIPS + identity loss).
    The defaults are ours (the paper has no attack): a few hundred steps, as the issue asks, and a
    learning rate that moves W+ far enough in that many steps."""

    steps: int = 300
    lr: float = 0.01
    lpips: float = 1.0  # weight of LPIPS-VGG between the render and the photo
    id: float = 1.0  # weight of the ArcFace identity loss (1 - cosine)
    starts: Tuple[str, ...] = ("inverted", "average")  # the re-inverted latent, and w_avg


@dataclass
class LeakageConfig:
    """The leakage-radius curve: renders of w + r·u for unit directions u (norm over the whole
    W+ tensor, as the adjacency loss measures α) at each radius r."""

    radii: Tuple[float, ...] = (0.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0)
    directions: int = 4  # random directions per radius (the same ones at every radius)
    kind: str = "mapped"  # 'mapped': towards random mapped latents, as the adjacency loss; 'isotropic'
    chunk: int = 4  # latents rendered per forward pass


@dataclass
class AuditConfig:
    """Everything that defines one audit (`guide audit`)."""

    seed: int = 0
    views: int = 11  # the evaluation yaws
    attack: AttackConfig = field(default_factory=AttackConfig)
    leakage: LeakageConfig = field(default_factory=LeakageConfig)
    impostors: int = 64  # random identities whose pairwise similarities calibrate the threshold
    false_accept_rate: float = 0.01  # the threshold accepts this fraction of impostor pairs
    threshold: Optional[float] = None  # a verification threshold given by the user (replaces the calibration)

    def to_dict(self) -> dict:
        return asdict(self)
