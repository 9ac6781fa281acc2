"""Host/device traffic: the staged copy and the counter that the trainer's tests rely on."""
import pytest
import torch

from guide.transfer import StagedTransfer, TransferCounter

META = torch.device("meta")


def _counts(fn):
    with TransferCounter() as counter:
        try:
            fn()
        except (RuntimeError, NotImplementedError):  # meta tensors refuse to give values
            pass
    return dict(counter.counts)


def test_counter_sees_copies_data_constructors_and_host_waits():
    x = torch.ones(4, device=META)
    assert _counts(lambda: torch.ones(3).to(META)) == {"h2d_pageable": 1}
    assert _counts(lambda: torch.tensor([1.0, 2.0], device=META)) == {"h2d_pageable": 1}
    assert _counts(lambda: x.new_tensor([1.0])) == {"h2d_pageable": 1}
    assert _counts(lambda: float(x.sum())) == {"sync": 1}
    assert _counts(lambda: x[x > 0]) == {"sync": 1}  # boolean indexing needs nonzero's count
    assert _counts(lambda: x.cpu()) == {"d2h": 1}
    assert _counts(lambda: torch.linalg.inv(torch.eye(3, device=META))) == {"sync": 1}  # reads its error flags
    # On-device work, device factories and CPU scalars are no traffic.
    assert _counts(lambda: (x * 2 + torch.tensor(3.0), torch.arange(3, device=META),
                            torch.where(x > 0, x, 0.0), x.masked_fill(x > 0, 1.0))) == {}
    assert _counts(lambda: torch.ones(3) * 2) == {}  # CPU only


def test_staged_transfer_is_one_copy_into_the_same_buffers():
    staged = StagedTransfer({"camera": (1, 25), "z": (2, 16)}, "cpu")
    camera, z = torch.randn(1, 25), torch.randn(2, 16)
    views = staged(camera=camera, z=z)
    assert torch.equal(views["camera"], camera) and torch.equal(views["z"], z)
    again = staged(camera=camera + 1, z=z + 1)
    assert again["z"].data_ptr() == views["z"].data_ptr() and torch.equal(views["z"], z + 1)
    with pytest.raises(ValueError, match="shape"):
        staged(camera=camera, z=torch.zeros(3, 16))
    on_meta = StagedTransfer({"camera": (1, 25), "z": (2, 16)}, META)
    with TransferCounter() as counter:
        on_meta(camera=camera, z=z)
    assert dict(counter.counts) == {"h2d_pageable": 1}


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_staged_transfer_on_cuda_is_pinned_and_asynchronous():
    staged = StagedTransfer({"z": (2, 16)}, "cuda")
    z = torch.randn(2, 16)
    with TransferCounter() as counter:
        views = staged(z=z)
    assert dict(counter.counts) == {"h2d_pinned": 1}
    assert torch.equal(views["z"].cpu(), z)
