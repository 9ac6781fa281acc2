"""`sample_identities`: a joint erase whose steps each use a random subset of the identities.

The joint objective sums the local and adjacency terms of all K identities plus the global
preservation term. With K in the hundreds one exact step renders every identity (in chunks of
``identity_chunk``), so its cost grows linearly with K. :class:`SampledLTUTrainer` instead draws
m of the K identities per step (without replacement, from its own seeded RNG, saved with the
resume state) and scales the global weight by m/K. The step's gradient is then (m/K) times an
unbiased estimate of the full objective's gradient: the same direction in expectation, and Adam
is invariant to the constant factor (apart from its epsilon). This CHANGES the objective to a
stochastic estimate: each identity is seen in about iters·m/K steps, so raise iters accordingly.
Logged losses are those of the subset (identity terms summed over m identities).
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

from guide.config import LTUConfig
from guide.errors import GuideError
from guide.trainer import LossRecord, LTUTrainer


class SampledLTUTrainer(LTUTrainer):
    """LTUTrainer over K identities that uses `sample` of them per step."""

    def __init__(self, G_src: nn.Module, w_u: torch.Tensor, w_t: torch.Tensor, config: LTUConfig, lpips: nn.Module,
                 id_loss: Optional[nn.Module] = None, seed: int = 0, sample: int = 8):
        total = w_u.shape[0]
        if config.cuda_graph:
            raise GuideError("sample_identities cannot use a CUDA graph: the step's identities change every step")
        self.sample = max(1, min(int(sample), total))
        scaled = copy.deepcopy(config)
        scaled.losses.global_weight = config.losses.global_weight * self.sample / total
        super().__init__(G_src, w_u, w_t, scaled, lpips, id_loss, seed)
        self.all_w_u, self.all_w_t = self.w_u, self.w_t
        self.subset_rng = torch.Generator().manual_seed(seed + 2)
        self.last_subset: Optional[torch.Tensor] = None

    def draw_subset(self) -> torch.Tensor:
        """Sorted indices of this step's identities."""
        order = torch.randperm(self.all_w_u.shape[0], generator=self.subset_rng)
        return order[: self.sample].sort().values

    def step_on_device(self) -> LossRecord:
        subset = self.draw_subset()
        self.last_subset = subset
        index = subset.to(self.all_w_u.device)
        self.w_u, self.w_t = self.all_w_u[index], self.all_w_t[index]
        try:
            return super().step_on_device()
        finally:
            self.w_u, self.w_t = self.all_w_u, self.all_w_t

    def state_dict(self) -> dict:
        return {**super().state_dict(), "subset_rng": self.subset_rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.subset_rng.set_state(state["subset_rng"])


def make_trainer(G_src, w_u, w_t, config: LTUConfig, networks, seed: int, sample: Optional[int] = None,
                 device=None) -> LTUTrainer:
    """The exact LTUTrainer, or the sampled one when `sample` is below the number of identities."""
    lpips = networks.lpips.to(device) if device is not None else networks.lpips
    id_loss = networks.id_loss
    if id_loss is not None and device is not None:
        id_loss = id_loss.to(device)
    if sample is not None and sample < w_u.shape[0]:
        return SampledLTUTrainer(G_src, w_u, w_t, config, lpips, id_loss, seed=seed, sample=sample)
    return LTUTrainer(G_src, w_u, w_t, config, lpips, id_loss, seed=seed)
