"""LTU (latent target unlearning): fine-tune a copy of the generator's synthesis network so the
erased identity's latent renders like the UFO target, its neighbourhood moves with it, and
random identities stay as the frozen source renders them.

Efficiency without changing the objective: per step the trainable generator renders all
latents of the step (1 local + adjacency batch + global batch) in ONE call, and the frozen
source renders the matching batch in one call under no_grad. The tri-planes of the MSE terms
come from that same backbone pass. The reference instead calls get_planes() and synthesis()
separately for every latent (two backbone passes, each with its own random noise); ours uses
one noise draw for both — the same objective in expectation, half the backbone work.
Loss terms are summed over the batch exactly as the reference's loops add them.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch
from torch import nn
from torch.profiler import record_function

from guide.acceleration import compile_generator, to_channels_last
from guide.config import LTUConfig
from guide.errors import GuideError
from guide.render import camera_for


class NonFiniteLossError(GuideError):
    """The loss became NaN or infinite; the step was not applied."""

    def __init__(self, step: int, losses: Dict[str, float]):
        self.step = step
        self.losses = losses
        super().__init__(f"loss became non-finite at step {step} ({losses}); the last good checkpoint is kept")


@dataclass
class StepInputs:
    """The random draws of one step (all from the trainer's CPU generator)."""

    yaw: float
    z_adjacency: torch.Tensor
    alphas: torch.Tensor
    z_global: torch.Tensor


class LTUTrainer:
    """Owns the trainable copy G (only backbone.synthesis trains), the frozen source, Adam and
    the RNGs. `step()` performs one update and returns the loss terms as floats."""

    def __init__(
        self,
        G_src: nn.Module,
        w_u: torch.Tensor,
        w_t: torch.Tensor,
        config: LTUConfig,
        lpips: nn.Module,
        id_loss: Optional[nn.Module] = None,
        seed: int = 0,
    ):
        self.config = config
        self.device = w_u.device
        self.G_src = G_src.requires_grad_(False)
        if config.channels_last:
            to_channels_last(G_src.superresolution, lpips, id_loss)
        self.G = copy.deepcopy(G_src)
        if config.compile:
            compile_generator(self.G)
            compile_generator(self.G_src)
        self.G.backbone.synthesis.requires_grad_(True)
        self.G_src.train(config.train_mode)
        self.G.train(config.train_mode)
        self.trainable = [p for p in self.G.backbone.synthesis.parameters()]
        self.optimizer = torch.optim.Adam(self.trainable, lr=config.lr)
        self.lpips = lpips
        self.id_loss = id_loss
        self.w_u = w_u.detach()
        self.w_t = w_t.detach()
        self.step_index = 0
        self.cpu_rng = torch.Generator().manual_seed(seed)
        self.device_rng = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.conditioning = camera_for(config.camera, 0.0, 0.0, self.device)

    # ----------------------------------------------------------------------- sampling
    @property
    def num_identities(self) -> int:
        return self.w_u.shape[0]

    def _uniform(self, low: float, high: float, n: int = 1) -> torch.Tensor:
        return torch.rand(n, generator=self.cpu_rng, dtype=torch.float64) * (high - low) + low

    def sample_inputs(self) -> StepInputs:
        """Draw one step's camera yaw, adjacency latents/offsets (adj_batch per identity,
        identity-major) and global-preservation latents."""
        losses, z_dim = self.config.losses, self.G_src.z_dim
        yaw = self._uniform(-self.config.camera.yaw_range, self.config.camera.yaw_range).item()
        n_adj = losses.adj_batch * self.num_identities if losses.adjacency else 0
        n_glob = losses.global_batch if losses.global_preservation else 0
        return StepInputs(
            yaw=yaw,
            z_adjacency=torch.randn(n_adj, z_dim, generator=self.cpu_rng),
            alphas=self._uniform(losses.adj_alpha_min, losses.adj_alpha_max, n_adj).float(),
            z_global=torch.randn(n_glob, z_dim, generator=self.cpu_rng),
        )

    def _map(self, z: torch.Tensor) -> torch.Tensor:
        c = self.conditioning.repeat(len(z), 1)
        return self.G_src.mapping(z.to(self.device), c, truncation_psi=self.config.truncation_psi,
                                  truncation_cutoff=self.config.truncation_cutoff)

    def latents(self, inputs: StepInputs, ids: Optional[range] = None, include_global: bool = True):
        """(ws for G, ws for G_src, number of local rows, number of adjacency rows) for the
        identities `ids` (default: all) of one step; global latents are appended last."""
        ids = range(self.num_identities) if ids is None else ids
        sel = slice(ids.start, ids.stop)
        ws_train, ws_src = [], []
        n_local = 0
        if self.config.losses.local:
            ws_train.append(self.w_u[sel])
            ws_src.append(self.w_t[sel])
            n_local = len(ids)
        n_adj = 0
        if len(inputs.z_adjacency):
            per = self.config.losses.adj_batch
            rows = slice(ids.start * per, ids.stop * per)
            w_ra = self._map(inputs.z_adjacency[rows])
            w_u = self.w_u[sel].repeat_interleave(per, dim=0)
            w_t = self.w_t[sel].repeat_interleave(per, dim=0)
            offset = w_ra - w_u
            norms = offset.flatten(1).norm(p=2, dim=1).reshape(-1, 1, 1)
            deltas = inputs.alphas[rows].to(self.device).reshape(-1, 1, 1) * offset / norms
            ws_train.append(w_u + deltas)
            ws_src.append(w_t + deltas)
            n_adj = len(deltas)
        if include_global and len(inputs.z_global):
            w_rg = self._map(inputs.z_global)
            ws_train.append(w_rg)
            ws_src.append(w_rg)
        return torch.cat(ws_train).detach(), torch.cat(ws_src).detach(), n_local, n_adj

    def chunks(self) -> list:
        """Identity ranges rendered together (config.identity_chunk per forward pass)."""
        size = max(1, self.config.identity_chunk)
        return [range(i, min(i + size, self.num_identities)) for i in range(0, self.num_identities, size)]

    # ------------------------------------------------------------------------- losses
    def compute_losses(self, inputs: StepInputs, ids: Optional[range] = None,
                       include_global: bool = True) -> Dict[str, torch.Tensor]:
        """Loss terms of one step for identities `ids` (default all; total under 'loss').
        Terms are sums over identities and samples, as the reference's loops add them."""
        cfg = self.config.losses
        with torch.no_grad():
            ws_train, ws_src, n_local, n_adj = self.latents(inputs, ids, include_global)
        n_identity = n_local + n_adj
        c = camera_for(self.config.camera, inputs.yaw, device=self.device).repeat(len(ws_train), 1)
        kwargs = dict(noise_mode=self.config.noise_mode, generator=self.device_rng, return_planes=True,
                      deterministic=self.config.deterministic_render, force_fp32=self.config.sr_fp32)
        with torch.no_grad(), record_function("ltu.render_source"):
            ref = self.G_src.synthesis(ws_src, c, **kwargs)
        with record_function("ltu.render_trainable"):
            out = self.G.synthesis(ws_train, c, **kwargs)

        with record_function("ltu.lpips"):
            lp = self.lpips(out["image"], ref["image"])  # [N]
        mse = (out["planes"][:n_identity] - ref["planes"][:n_identity]).square().flatten(1).mean(1)
        zero = out["image"].new_zeros(())
        ident = torch.zeros_like(mse)
        needs_id = (cfg.local and cfg.local_id) or (cfg.adjacency and cfg.adj_id)
        if self.id_loss is not None and needs_id and n_identity:
            with record_function("ltu.id_loss"):
                ident = self.id_loss.terms(out["image"][:n_identity], ref["image"][:n_identity])

        terms: Dict[str, torch.Tensor] = {}
        total = zero
        if n_local:
            rows = slice(0, n_local)
            terms["local_mse"], terms["local_lpips"] = mse[rows].sum(), lp[rows].sum()
            terms["local_id"] = ident[rows].sum()
            per_sample = cfg.local_mse * mse[rows] + cfg.local_lpips * lp[rows] + cfg.local_id * ident[rows]
            terms["local"] = per_sample.sum()
            total = total + terms["local"]
        if n_adj:
            rows = slice(n_local, n_identity)
            terms["adj_mse"], terms["adj_lpips"], terms["adj_id"] = mse[rows].sum(), lp[rows].sum(), ident[rows].sum()
            per_sample = cfg.adj_mse * mse[rows] + cfg.adj_lpips * lp[rows] + cfg.adj_id * ident[rows]
            terms["adjacency"] = per_sample.sum()
            total = total + cfg.adj_weight * terms["adjacency"]
        if include_global and len(inputs.z_global):
            terms["global"] = lp[n_identity:].sum()
            total = total + cfg.global_weight * terms["global"]
        terms["loss"] = total
        return terms

    def step(self) -> Dict[str, float]:
        """One Adam update; raises NonFiniteLossError (without updating) on NaN/inf.

        With many identities the step is split into chunks of `identity_chunk` identities whose
        gradients are accumulated (same objective, bounded memory); global latents go with the
        first chunk."""
        inputs = self.sample_inputs()
        self.optimizer.zero_grad(set_to_none=True)
        values: Dict[str, float] = {}
        for k, ids in enumerate(self.chunks()):
            terms = self.compute_losses(inputs, ids, include_global=(k == 0))
            chunk_values = {name: float(v.detach()) for name, v in terms.items()}
            if not all(math.isfinite(v) for v in chunk_values.values()):
                self.optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLossError(self.step_index, chunk_values)
            with record_function("ltu.backward"):
                terms["loss"].backward()
            for name, v in chunk_values.items():
                values[name] = values.get(name, 0.0) + v
        with record_function("ltu.adam"):
            self.optimizer.step()
        self.step_index += 1
        return values

    def run(self, iters: Optional[int] = None, callback: Optional[Callable[[int, Dict[str, float]], None]] = None):
        """Step until `iters` (default config.iters) steps are done in total."""
        target = self.config.iters if iters is None else iters
        while self.step_index < target:
            values = self.step()
            if callback is not None:
                callback(self.step_index, values)

    # --------------------------------------------------------------------- resume state
    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically: weights, Adam, RNGs, step."""
        return {
            "step": self.step_index,
            "synthesis": {k: v.detach().clone() for k, v in self.G.backbone.synthesis.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "cpu_rng": self.cpu_rng.get_state(),
            "device_rng": self.device_rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.backbone.synthesis.load_state_dict(state["synthesis"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.cpu_rng.set_state(state["cpu_rng"])
        self.device_rng.set_state(state["device_rng"])
        self.step_index = int(state["step"])
