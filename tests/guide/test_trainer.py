"""The LTU trainer on the tiny generator: hand-checked loss terms, learning, resume."""

import math

import pytest
import torch

from guide.config import LTUConfig, LossConfig
from guide.render import camera_for
from guide.trainer import LTUTrainer
from guide.ufo import extrapolated_target
from tests.guide.trainer_utils import make_trainer


def test_loss_terms_match_hand_computation(tiny_generator_factory, random_lpips, tiny_id_loss):
    trainer = make_trainer(tiny_generator_factory, random_lpips, tiny_id_loss)
    inputs = trainer.sample_inputs()
    state = trainer.device_rng.get_state()
    terms = trainer.compute_losses(inputs)

    # Recompute every term by hand, one latent at a time, with the same noise draws.
    trainer.device_rng.set_state(state)
    ws_train, ws_src, n_local, n_adj = trainer.latents(inputs)
    assert ws_train.shape[0] == 5 and (n_local, n_adj) == (1, 2)
    c = camera_for(trainer.config.camera, inputs.yaw).repeat(5, 1)
    kw = dict(noise_mode="random", generator=trainer.device_rng, return_planes=True)
    with torch.no_grad():
        ref = trainer.G_src.synthesis(ws_src, c, **kw)
        out = trainer.G.synthesis(ws_train, c, **kw)
    cfg = LossConfig()
    img, img_t, planes, planes_t = out["image"], ref["image"], out["planes"], ref["planes"]

    def lp(i):
        return random_lpips(img[i:i + 1], img_t[i:i + 1]).item()

    def mse(i):
        return torch.nn.functional.mse_loss(planes[i:i + 1], planes_t[i:i + 1]).item()

    def ident(i):
        return tiny_id_loss(img[i:i + 1], img_t[i:i + 1]).item()

    local = cfg.local_mse * mse(0) + cfg.local_lpips * lp(0) + cfg.local_id * ident(0)
    adjacency = sum(cfg.adj_mse * mse(i) + cfg.adj_lpips * lp(i) + cfg.adj_id * ident(i) for i in (1, 2))
    glob = lp(3) + lp(4)
    assert terms["local"].item() == pytest.approx(local, rel=1e-4)
    assert terms["adjacency"].item() == pytest.approx(adjacency, rel=1e-4)
    assert terms["global"].item() == pytest.approx(glob, rel=1e-4)
    assert terms["loss"].item() == pytest.approx(local + adjacency + glob, rel=1e-4)
    # The adjacency latents moved w_u and w_t by the same offset.
    assert torch.allclose(ws_train[1:3] - trainer.w_u, ws_src[1:3] - trainer.w_t, atol=1e-4)
    # Global latents are shared.
    assert torch.equal(ws_train[3:], ws_src[3:])


def test_training_changes_only_the_synthesis_network(tiny_generator_factory, random_lpips, tiny_id_loss):
    """LTU trains backbone.synthesis and nothing else (mapping, decoder, super-resolution stay the
    source's). That an erase erases is shown on the toy world (tests/guide/toy/test_effect.py)."""
    trainer = make_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, iters=2, lr=2e-3)
    trainer.run()
    changed = set()
    for (name, p), (_, q) in zip(trainer.G.named_parameters(), trainer.G_src.named_parameters()):
        if not torch.equal(p, q):
            changed.add(name)
    assert changed and all(name.startswith("backbone.synthesis") for name in changed), sorted(changed)


def test_resume_is_bit_identical(tiny_generator_factory, random_lpips, tiny_id_loss):
    full = make_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, iters=3)
    full.run()
    first = make_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, iters=3)
    first.run(2)
    state = first.state_dict()
    resumed = make_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, iters=3)
    resumed.load_state_dict(state)
    resumed.run()
    for (name, p), (_, q) in zip(full.G.named_parameters(), resumed.G.named_parameters()):
        assert torch.equal(p, q), name


def test_non_finite_loss_stops_without_update(tiny_generator_factory, random_lpips):
    from guide.trainer import NonFiniteLossError

    trainer = make_trainer(tiny_generator_factory, random_lpips, None)
    trainer.w_u = trainer.w_u * float("nan")
    before = [p.clone() for p in trainer.trainable]
    with pytest.raises(NonFiniteLossError, match="step 0"):
        trainer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.trainable))


def test_joint_identities_chunked_gradients_equal_one_pass(tiny_generator_factory, random_lpips, tiny_id_loss):
    """Several identities in one model: splitting them into chunks (gradient accumulation)
    gives the same loss and gradients as one big pass (deterministic renders, const noise)."""
    G = tiny_generator_factory()
    g = torch.Generator().manual_seed(5)
    c = camera_for(LTUConfig().camera, 0.0, 0.0)
    w_u = G.mapping(torch.randn(3, G.z_dim, generator=g), c.repeat(3, 1))
    w_avg = G.backbone.mapping.w_avg.reshape(1, 1, -1)
    w_t = extrapolated_target(w_u, w_avg, 30.0)
    results = []
    for chunk in (3, 2, 1):
        config = LTUConfig(identity_chunk=chunk, noise_mode="const", deterministic_render=True)
        trainer = LTUTrainer(tiny_generator_factory(), w_u, w_t, config, lpips=random_lpips, id_loss=tiny_id_loss)
        assert len(trainer.chunks()) == -(-3 // chunk)
        inputs = trainer.sample_inputs()
        assert len(inputs.z_adjacency) == 3 * config.losses.adj_batch
        trainer.sample_inputs = lambda inputs=inputs: inputs
        trainer.optimizer.step = lambda: None  # keep weights, inspect gradients
        values = trainer.step()
        grads = [p.grad.clone() for p in trainer.trainable]
        results.append((values, grads))
    (v0, g0) = results[0]
    # Chunking only reorders float32 sums, so compare each tensor's largest difference with the
    # scale of the whole gradient (max |g| over every tensor), not element by element: entries
    # near zero, and the scalar noise strengths (sums of many cancelling per-pixel terms), differ
    # by rounding alone far beyond any relative tolerance (1.8261e-04 vs 1.8258e-04 on one CPU;
    # up to 2 % of a scalar's own |g|). Measured here (2 cores, OMP_NUM_THREADS=1): worst
    # max|diff| = 6e-6 of max|g| for chunks 2 and 1; the bound 1e-4 leaves a 15x margin and
    # still fails a chunk that is dropped or double counted, or a 1 % scaling error.
    scale = max(float(g.abs().max()) for g in g0)
    for values, grads in results[1:]:
        for key in ("loss", "local", "adjacency", "global"):
            assert values[key] == pytest.approx(v0[key], rel=1e-4), key
        for i, (got, want) in enumerate(zip(grads, g0)):
            assert float((got - want).abs().max()) <= 1e-4 * scale, f"trainable tensor {i}"


# ------------------------------------------------- the step's structure (draws ahead, reads in batches)


def _inline_step(trainer):
    """The step as it ran before its draws were made ahead (commit 256de19): every chunk renders
    with inline draws from the device generator and its terms are read right away."""
    inputs = trainer.sample_inputs()
    trainer.optimizer.zero_grad(set_to_none=True)
    values = {}
    for k, ids in enumerate(trainer.chunks()):
        terms = trainer.compute_losses(inputs, ids, include_global=(k == 0))
        chunk = {name: float(v.detach()) for name, v in terms.items()}
        terms["loss"].backward()
        for name, v in chunk.items():
            values[name] = values.get(name, 0.0) + v
    trainer.optimizer.step()
    trainer.step_index += 1
    return values


def test_step_with_draws_made_ahead_equals_the_inline_step_bitwise(tiny_generator_factory, tiny_lpips,
                                                                   tiny_id_loss):
    """Same random streams, same numbers: the first step records the render draws while drawing
    inline, the second replays them drawn ahead; run() reads both steps' terms in one batch."""
    inline = make_trainer(tiny_generator_factory, tiny_lpips, tiny_id_loss, iters=2)
    expected = [_inline_step(inline) for _ in range(2)]
    trainer = make_trainer(tiny_generator_factory, tiny_lpips, tiny_id_loss, iters=2)
    seen = []
    trainer.run(callback=lambda step, values: seen.append((step, values)), read_every=2)
    assert seen == [(1, expected[0]), (2, expected[1])]
    assert trainer._plans is not None and trainer._plans[0][0]  # the second step replayed its draws
    for p, q in zip(inline.trainable, trainer.trainable):
        assert torch.equal(p, q)
    assert torch.equal(inline.device_rng.get_state(), trainer.device_rng.get_state())


def test_fused_adam_masks_a_non_finite_step_and_every_later_one(tiny_generator_factory, tiny_lpips):
    """With fused Adam nothing is read per step: step 1's NaN sets a flag on the device that
    masks its update and step 2's; the error comes when the batch is read."""
    from guide.trainer import NonFiniteLossError

    trainer = make_trainer(tiny_generator_factory, tiny_lpips, None, iters=3, fused_adam=True)
    draw = trainer.sample_inputs
    calls = []

    def poisoned():
        inputs = draw()
        calls.append(inputs)
        if len(calls) == 2:
            inputs.z_global = inputs.z_global * float("nan")
        return inputs

    trainer.sample_inputs = poisoned
    after_first = {}

    def callback(step, values):
        after_first[step] = [p.detach().clone() for p in trainer.trainable]

    with pytest.raises(NonFiniteLossError, match="step 1") as error:
        trainer.run(callback=callback, read_every=10, read_at=lambda step: step == 1)
    assert list(after_first) == [1] and trainer.step_index == 3  # steps 2 and 3 ran, unread
    assert error.value.step == 1 and math.isnan(error.value.losses["global"])
    assert all(torch.equal(a, b) for a, b in zip(after_first[1], trainer.trainable))
    assert int(trainer.optimizer.state[trainer.trainable[0]]["step"]) == 1


class EagerGraphRunner:
    """CudaGraphRunner's stand-in on the CPU: 'capture' keeps the function without running it and
    each replay runs it, writing its outputs into the static tensor that capture returned — what
    a replay does, minus the graph. It lets the CPU check the graph path's bookkeeping (warm-up
    steps, capture point, static draw buffers refilled in place)."""

    def __init__(self, device="cpu"):
        self.device, self.fn, self.outputs, self.replays = device, None, None, 0

    @property
    def captured(self):
        return self.fn is not None

    def streaming(self):
        import contextlib

        return contextlib.nullcontext()

    def capture(self, fn):
        self.fn, self.outputs = fn, torch.empty(0, device=self.device)
        return self.outputs

    def replay(self):
        result = self.fn()
        self.outputs.resize_(result.shape).copy_(result)
        self.replays += 1

    def reset(self):
        self.fn = None


def test_graph_path_bookkeeping_equals_the_eager_step(tiny_generator_factory, tiny_lpips, tiny_id_loss, monkeypatch):
    """The CUDA-graph path with the graph replaced by eager replays (EagerGraphRunner) gives the
    eager fused-Adam step's numbers bit for bit: one warm-up step (recording), the capture step,
    then a replay whose draws went into the static buffers in place."""
    import guide.trainer

    monkeypatch.setattr(guide.trainer, "GRAPH_WARMUP_STEPS", 1)
    eager = make_trainer(tiny_generator_factory, tiny_lpips, tiny_id_loss, fused_adam=True)
    graphed = make_trainer(tiny_generator_factory, tiny_lpips, tiny_id_loss, fused_adam=True)
    graphed._graph_runner = runner = EagerGraphRunner()
    expected = [eager.step() for _ in range(3)]
    got = [graphed.step() for _ in range(3)]
    assert runner.replays == 2 and got == expected
    assert all(torch.equal(p, q) for p, q in zip(eager.trainable, graphed.trainable))


def test_step_makes_one_host_copy_and_never_waits_for_the_device(tiny_generator_factory, tiny_lpips,
                                                                 tiny_id_loss, monkeypatch):
    """On the meta device (placement like a GPU, no numbers: reading a value raises) a fused-Adam
    step — forward, backward and update — copies from the host exactly once (the staged draws)
    and never waits for the device. Fused Adam has no meta kernel check by default; torch's
    shape-only kernel for it exists, so the test lets meta through torch's device list."""
    import copy
    import importlib

    from guide.transfer import TransferCounter

    optimizer_module = importlib.import_module("torch.optim.optimizer")
    supported = optimizer_module._get_fused_kernels_supported_devices
    monkeypatch.setattr(optimizer_module, "_get_fused_kernels_supported_devices", lambda: supported() + ["meta"])
    meta = torch.device("meta")
    G = tiny_generator_factory().to(meta)
    w = torch.zeros(1, G.num_ws, G.w_dim, device=meta)
    trainer = LTUTrainer(G, w, w, LTUConfig(fused_adam=True), lpips=copy.deepcopy(tiny_lpips).to(meta),
                         id_loss=copy.deepcopy(tiny_id_loss).to(meta))
    for step in range(2):  # the first records the draws' plan, the second replays them
        with TransferCounter() as counter:
            trainer.step_on_device()
        assert dict(counter.counts) == {"h2d_pageable": 1}, (step, dict(counter.ops))  # pinned on CUDA
    trainer._graph_runner = EagerGraphRunner(meta)  # the graph path: warm-up, capture, refilled buffers
    for step in range(3):
        with TransferCounter() as counter:
            trainer.step_on_device()
        assert dict(counter.counts) == {"h2d_pageable": 1}, ("graph", step, dict(counter.ops))


# ---------------------------------------------------------------------- on a GPU (skipped without one)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture
def exact_cuda():
    """CUDA matmuls and convolutions in full fp32 (no TF32), restored afterwards."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def _cuda_trainer(factory, lpips, id_loss, **overrides):
    import copy

    G = factory().cuda()
    g = torch.Generator().manual_seed(123)
    c = camera_for(LTUConfig().camera, 0.0, 0.0, "cuda")
    w_avg = G.backbone.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    w_u = G.mapping(torch.randn(1, G.z_dim, generator=g).cuda(), c)
    w_t = extrapolated_target(w_u, w_avg, 30.0)
    overrides.setdefault("iters", 5)
    return LTUTrainer(G, w_u, w_t, LTUConfig(**overrides), lpips=copy.deepcopy(lpips).cuda(),
                      id_loss=copy.deepcopy(id_loss).cuda(), seed=0)


def _relative_gaps(a, b):
    return [max(abs(x[k] - y[k]) / max(abs(y[k]), 1e-12) for k in y) for x, y in zip(a, b)]


@pytest.mark.cuda
@needs_cuda
def test_cuda_graph_step_matches_the_eager_step(tiny_generator_factory, random_lpips, tiny_id_loss, exact_cuda):
    """The CUDA graph (2 eager steps, capture, replays) against the eager fused-Adam step from the
    same seeds, TF32 off. Same kernels on the same numbers; only atomic additions (tri-plane
    sampling's backward) may round differently, and Adam can move a weight whose gradient is
    rounding noise by up to lr: rel 1e-5 on the first step's losses, 1e-3 after (as
    tests/guide/test_acceleration.py). The gaps are printed (-s) for docs/performance.md."""
    eager = _cuda_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, fused_adam=True)
    graph = _cuda_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, cuda_graph=True)
    expected = [eager.step() for _ in range(5)]
    got = [graph.step() for _ in range(5)]
    assert graph._graph_runner.captured  # steps 3-5 were replays
    gaps = _relative_gaps(got, expected)
    print("graph vs eager, relative loss gaps per step:", [f"{g:.1e}" for g in gaps])
    assert gaps[0] < 1e-5 and max(gaps) < 1e-3, gaps
    weight_gap = max((p - q).abs().max().item() for p, q in zip(eager.trainable, graph.trainable))
    print("graph vs eager, max weight gap after 5 steps:", weight_gap)
    assert weight_gap < 5 * eager.config.lr


@pytest.mark.cuda
@needs_cuda
def test_cuda_steps_copy_once_pinned_and_never_wait(tiny_generator_factory, random_lpips, tiny_id_loss):
    """On the GPU: a fused-Adam step and a CUDA-graph replay each make one pinned host copy and no
    host wait (guide.transfer.TransferCounter)."""
    from guide.transfer import TransferCounter

    for options in (dict(fused_adam=True), dict(cuda_graph=True)):
        trainer = _cuda_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, **options)
        trainer.read([trainer.step_on_device() for _ in range(3)])  # recording, warm-up, capture
        with TransferCounter() as counter:
            records = [trainer.step_on_device() for _ in range(2)]
        assert dict(counter.counts) == {"h2d_pinned": 2}, (options, dict(counter.ops))
        trainer.read(records)


@pytest.mark.cuda
@needs_cuda
def test_cuda_graph_masks_a_non_finite_step_and_resumes(tiny_generator_factory, random_lpips, tiny_id_loss,
                                                        exact_cuda):
    """A NaN in a replayed step is masked inside the graph (weights stay those before it), and a
    graph trainer resumed from a checkpoint continues like the uninterrupted one (rel 1e-3, as above)."""
    from guide.trainer import NonFiniteLossError

    trainer = _cuda_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, cuda_graph=True)
    draw = trainer.sample_inputs

    def poisoned():
        inputs = draw()
        if trainer.step_index == 3:
            inputs.z_global = inputs.z_global * float("nan")
        return inputs

    trainer.sample_inputs = poisoned
    snapshot = {}
    with pytest.raises(NonFiniteLossError, match="step 3"):
        trainer.run(callback=lambda step, v: snapshot.update({step: [p.clone() for p in trainer.trainable]}),
                    read_every=10, read_at=lambda step: step == 3)
    assert all(torch.equal(a, b) for a, b in zip(snapshot[3], trainer.trainable))

    full = _cuda_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, cuda_graph=True)
    expected = [full.step() for _ in range(5)]
    first = _cuda_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, cuda_graph=True)
    [first.step() for _ in range(4)]
    resumed = _cuda_trainer(tiny_generator_factory, random_lpips, tiny_id_loss, cuda_graph=True)
    resumed.load_state_dict(first.state_dict())
    gaps = _relative_gaps([resumed.step()], expected[4:])
    print("graph resume vs uninterrupted, relative loss gap of step 5:", gaps)
    assert max(gaps) < 1e-3
