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

How a step runs (the numbers equal those of drawing inline, bit for bit on CPU):

1. draws — every random number of the step before any work: the camera yaw, the adjacency
   latents and offsets and the global latents from the CPU generator (sent to the device in ONE
   staged copy, guide.transfer), then the renders' backbone noise, ray jitter and importance
   uniforms from the device generator (eg3d.randomness.draw_ahead, in the order the renders
   consume them; the trainer's first step records that order while drawing inline);
2. update — forward, backward and Adam: no random draws, no host copies, and the loss terms
   stay on the device as one vector (a LossRecord);
3. reading — `read()` copies records to the host, which waits for the device; the erase loop
   does it every few steps (`run(read_every=...)`).

Non-finite losses never update the weights. With fused Adam (config.fused_adam) the step sets
a flag on the device that masks the update (Adam's found_inf) of that step and of every later
one, so the weights stay those from before it; NonFiniteLossError is raised when its record is
read. With the default Adam the step reads that one flag before updating.

With config.cuda_graph (CUDA, fused capturable Adam) the update is captured once as a CUDA
graph after a few eager steps and replayed every step: the draws are made into the graph's
static buffers outside it, so the random streams and resume stay as in the eager step.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.profiler import record_function

from eg3d.randomness import DrawRecorder, DrawReplay, draw_ahead
from guide.acceleration import CudaGraphRunner, compile_generator, to_channels_last
from guide.config import LTUConfig
from guide.devices import device_generator
from guide.errors import GuideError
from guide.render import camera_for
from guide.transfer import StagedTransfer

GRAPH_WARMUP_STEPS = 2  # eager steps before a CUDA graph is captured (cuDNN autotuning, lazy set-up)


class NonFiniteLossError(GuideError):
    """The loss became NaN or infinite; the step was not applied."""

    def __init__(self, step: int, losses: Dict[str, float]):
        self.step = step
        self.losses = losses
        super().__init__(f"loss became non-finite at step {step} ({losses}); the last good checkpoint is kept")


@dataclass
class StepInputs:
    """The draws of one step from the trainer's CPU generator (CPU tensors; inside the step,
    their staged copies on the device)."""

    yaw: float
    z_adjacency: torch.Tensor
    alphas: torch.Tensor
    z_global: torch.Tensor


@dataclass
class LossRecord:
    """The loss terms of one step, still on the device (LTUTrainer.read turns them into floats)."""

    step: int  # 0-based index of the step
    values: torch.Tensor  # every chunk's terms, flat, in LTUTrainer.layout order


def make_adam(params, lr: float, *, fused: bool = False, capturable: bool = False) -> torch.optim.Adam:
    """torch's Adam; `fused` (one kernel, found_inf masking) and `capturable` (CUDA graphs) on request."""
    options = {}
    if fused:
        options["fused"] = True
    if capturable:
        options["capturable"] = True
    return torch.optim.Adam(params, lr=lr, **options)


class LTUTrainer:
    """Owns the trainable copy G (only backbone.synthesis trains), the frozen source, Adam and
    the RNGs. `step()` performs one update and returns the loss terms as floats; the erase loop
    uses `run()`, which reads them from the device in batches."""

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
        if config.cuda_graph and self.device.type != "cuda":
            raise GuideError(f"a CUDA graph needs a CUDA device (the trainer is on {self.device})")
        if config.cuda_graph and config.compile:
            raise GuideError("use either torch.compile or a CUDA graph, not both")
        self.G_src = G_src.requires_grad_(False)
        if config.channels_last:
            to_channels_last(G_src, lpips, id_loss)
        self.G = copy.deepcopy(G_src)
        if config.compile:
            compile_generator(self.G)
            compile_generator(self.G_src)
        self.G.backbone.synthesis.requires_grad_(True)
        self.G_src.train(config.train_mode)
        self.G.train(config.train_mode)
        self.trainable = [p for p in self.G.backbone.synthesis.parameters()]
        masked = config.fused_adam or config.cuda_graph
        self.optimizer = make_adam(self.trainable, config.lr, fused=masked, capturable=config.cuda_graph)
        self._found_inf: Optional[torch.Tensor] = None  # 1.0 once a step was non-finite (masks Adam)
        if masked:
            self._found_inf = torch.zeros((), device=self.device)
            self.optimizer.found_inf = self._found_inf
        self.lpips = lpips
        self.id_loss = id_loss
        self.w_u = w_u.detach()
        self.w_t = w_t.detach()
        self.step_index = 0
        self.cpu_rng = torch.Generator().manual_seed(seed)
        self.device_rng = device_generator(self.device, seed + 1)
        self.conditioning = camera_for(config.camera, 0.0, 0.0, self.device)
        self.layout: Optional[List[List[str]]] = None  # names of each chunk's terms (after the first step)
        self._plans: Optional[list] = None  # per chunk: (plan of G_src's draws, plan of G's draws)
        self._staging: Optional[StagedTransfer] = None
        self._graph_runner = CudaGraphRunner(self.device) if config.cuda_graph else None
        self._static: dict = {}  # the graph's draw buffers and output
        self._eager_steps = 0

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

    def _to_device(self, inputs: StepInputs, camera: torch.Tensor) -> Tuple[StepInputs, torch.Tensor]:
        """The step's CPU draws and camera on the device, in one staged copy (static buffers)."""
        tensors = dict(camera=camera, z_adjacency=inputs.z_adjacency, alphas=inputs.alphas,
                       z_global=inputs.z_global)
        if self._staging is None:
            self._staging = StagedTransfer({name: t.shape for name, t in tensors.items()}, self.device)
        views = self._staging(**tensors)
        return StepInputs(inputs.yaw, views["z_adjacency"], views["alphas"], views["z_global"]), views["camera"]

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
    def compute_losses(self, inputs: StepInputs, ids: Optional[range] = None, include_global: bool = True,
                       camera: Optional[torch.Tensor] = None, draws: Optional[tuple] = None) -> Dict[str, torch.Tensor]:
        """Loss terms of one step for identities `ids` (default all; total under 'loss').
        Terms are sums over identities and samples, as the reference's loops add them.
        `camera`: the [1,25] training camera on the device (default: from inputs.yaw); `draws`:
        where the renders of G_src and G take their random numbers (default: both from the
        device generator, inline; see eg3d.randomness)."""
        cfg = self.config.losses
        with torch.no_grad():
            ws_train, ws_src, n_local, n_adj = self.latents(inputs, ids, include_global)
        n_identity = n_local + n_adj
        if camera is None:
            camera = camera_for(self.config.camera, inputs.yaw, device=self.device)
        c = camera.repeat(len(ws_train), 1)
        source_src, source_train = draws if draws is not None else (self.device_rng, self.device_rng)
        kwargs = dict(noise_mode=self.config.noise_mode, return_planes=True,
                      deterministic=self.config.deterministic_render, force_fp32=self.config.sr_fp32)
        with torch.no_grad(), record_function("ltu.render_source"):
            ref = self.G_src.synthesis(ws_src, c, generator=source_src, **kwargs)
        with record_function("ltu.render_trainable"):
            out = self.G.synthesis(ws_train, c, generator=source_train, **kwargs)
        for source in (source_src, source_train):
            if isinstance(source, DrawReplay):
                source.finish()

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

    # --------------------------------------------------------------------------- step
    def step(self) -> Dict[str, float]:
        """One Adam update; returns its loss terms as floats (waits for the device). Raises
        NonFiniteLossError, without updating, on NaN/inf.

        With many identities the step is split into chunks of `identity_chunk` identities whose
        gradients are accumulated (same objective, bounded memory); global latents go with the
        first chunk."""
        return self.read([self.step_on_device()])[0]

    def step_on_device(self) -> LossRecord:
        """One Adam update whose loss terms stay on the device (nothing waits for the device,
        except the default Adam's one finiteness check)."""
        inputs = self.sample_inputs()
        camera = camera_for(self.config.camera, inputs.yaw)  # on the CPU; staged with the draws
        if self._graph_runner is not None:
            with self._graph_runner.streaming():
                values = self._graph_step(inputs, camera)
        else:
            device_inputs, device_camera = self._to_device(inputs, camera)
            with _eager_while_recording(self.config.compile and self._plans is None):
                values = self._eager_update(device_inputs, device_camera, self._draw_ahead())
        record = LossRecord(self.step_index, values)
        self.step_index += 1
        return record

    def _draw_ahead(self, out: Optional[list] = None) -> Optional[list]:
        """Every chunk's (G_src, G) pre-drawn render numbers, in the order the renders use them
        (into the buffers `out` when given); None before the first step has recorded that order."""
        if self._plans is None:
            return None
        draws = []
        for k, (plan_src, plan_train) in enumerate(self._plans):
            buffers = (None, None) if out is None else out[k]
            draws.append((draw_ahead(plan_src, self.device_rng, self.device, buffers[0]),
                          draw_ahead(plan_train, self.device_rng, self.device, buffers[1])))
        return draws

    def _sources(self, draws: Optional[list]) -> list:
        """Per chunk, the render sources: recorders (first step) or replays of `draws`."""
        if draws is None:
            return [(DrawRecorder(self.device_rng), DrawRecorder(self.device_rng)) for _ in self.chunks()]
        return [(DrawReplay(src, plan_src), DrawReplay(train, plan_train))
                for (src, train), (plan_src, plan_train) in zip(draws, self._plans)]

    def _eager_update(self, inputs: StepInputs, camera: torch.Tensor, draws: Optional[list]) -> torch.Tensor:
        sources = self._sources(draws)
        self.optimizer.zero_grad(set_to_none=True)
        values = self._update(inputs, camera, sources)
        if self._plans is None:
            self._plans = [(src.plan, train.plan) for src, train in sources]
        self._eager_steps += 1
        return values

    def _update(self, inputs: StepInputs, camera: torch.Tensor, sources: list) -> torch.Tensor:
        """Forward and backward of every chunk, then the guarded Adam update; returns the flat
        vector of loss terms (on the device)."""
        chunk_terms = []
        for k, ids in enumerate(self.chunks()):
            terms = self.compute_losses(inputs, ids, include_global=(k == 0), camera=camera, draws=sources[k])
            with record_function("ltu.backward"):
                terms["loss"].backward()
            chunk_terms.append(terms)
        if self.layout is None:
            self.layout = [list(terms) for terms in chunk_terms]
        values = torch.cat([torch.stack([terms[name].detach() for name in names])
                            for terms, names in zip(chunk_terms, self.layout)])
        finite = torch.isfinite(values).all()
        if self._found_inf is not None:
            torch.logical_or(self._found_inf, ~finite, out=self._found_inf)  # sticky: masks this and later steps
        elif not bool(finite):  # default Adam cannot mask: read the one flag (waits for the device)
            self.optimizer.zero_grad(set_to_none=True)
            chunks = self._by_chunk(values.tolist())
            raise NonFiniteLossError(self.step_index, next(c for c in chunks if not _all_finite(c)))
        with record_function("ltu.adam"):
            self.optimizer.step()
        return values

    def _graph_step(self, inputs: StepInputs, camera: torch.Tensor) -> torch.Tensor:
        """A step of the CUDA-graph path: eager warm-up steps, then capture once, then replay."""
        runner = self._graph_runner
        device_inputs, device_camera = self._to_device(inputs, camera)
        if not runner.captured and (self._plans is None or self._eager_steps < GRAPH_WARMUP_STEPS):
            return self._eager_update(device_inputs, device_camera, self._draw_ahead())
        if not runner.captured:
            self._static["draws"] = self._draw_ahead()

            def update():
                self.optimizer.zero_grad(set_to_none=True)  # the graph allocates the gradients and assigns them
                return self._update(device_inputs, device_camera, self._sources(self._static["draws"]))

            self._static["values"] = runner.capture(update)
        else:
            self._draw_ahead(out=self._static["draws"])
        runner.replay()
        return self._static["values"].clone()

    # ------------------------------------------------------------------------ reading
    def _by_chunk(self, flat: Sequence[float]) -> List[Dict[str, float]]:
        chunks, offset = [], 0
        for names in self.layout:
            chunks.append(dict(zip(names, flat[offset:offset + len(names)])))
            offset += len(names)
        return chunks

    def _read(self, records: Sequence[LossRecord]) -> Tuple[List[Dict[str, float]], Optional[NonFiniteLossError]]:
        """Values of the records up to the first non-finite one, and the error for that one."""
        if not records:
            return [], None
        rows = torch.stack([record.values for record in records]).cpu().tolist()  # one copy, waits
        out: List[Dict[str, float]] = []
        for record, row in zip(records, rows):
            values: Dict[str, float] = {}
            for chunk in self._by_chunk(row):
                if not _all_finite(chunk):
                    return out, NonFiniteLossError(record.step, chunk)
                for name, v in chunk.items():
                    values[name] = values.get(name, 0.0) + v
            out.append(values)
        return out, None

    def read(self, records: Sequence[LossRecord]) -> List[Dict[str, float]]:
        """The records' loss terms as floats (chunks summed per term), in one copy to the host;
        raises NonFiniteLossError for the first step with a NaN/inf term (its update, and with
        fused Adam every later one, was not applied)."""
        values, error = self._read(records)
        if error is not None:
            raise error
        return values

    def run(self, iters: Optional[int] = None, callback: Optional[Callable[[int, Dict[str, float]], None]] = None,
            read_every: int = 1, read_at: Optional[Callable[[int], bool]] = None) -> None:
        """Step until `iters` (default config.iters) steps are done in total.

        The loss terms are read from the device every `read_every` steps, at every step where
        `read_at(step)` is true, and at the end; then `callback(step, values)` runs for each of
        those steps in order (step counts from 1). When it runs for a step where the trainer
        read, the trainer's state is that step's (what a checkpoint needs)."""
        target = self.config.iters if iters is None else iters
        pending: List[LossRecord] = []

        def deliver():
            values, error = self._read(pending)
            for record, v in zip(pending, values):
                if callback is not None:
                    callback(record.step + 1, v)
            pending.clear()
            if error is not None:
                raise error

        while self.step_index < target:
            try:
                pending.append(self.step_on_device())
            except NonFiniteLossError:
                deliver()
                raise
            step = self.step_index
            if len(pending) >= max(1, read_every) or step >= target or (read_at is not None and read_at(step)):
                deliver()

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
        if self._graph_runner is not None:  # a captured graph would update the replaced optimizer state
            self._graph_runner.reset()
        self._static = {}


def _eager_while_recording(active: bool):
    """Compiled modules run eagerly in the step that records the draws: its inline draws from a
    torch.Generator would break the compiled graphs at every draw (and recompile them)."""
    if active and hasattr(torch.compiler, "set_stance"):
        return torch.compiler.set_stance("force_eager")
    return contextlib.nullcontext()


def _all_finite(values: Dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in values.values())
