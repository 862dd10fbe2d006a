"""Suite-wide set-up: one torch thread per test process.

``make test`` runs two pytest-xdist workers on two cores; with torch's default of one thread per
core each, every parallel torch region of one worker waits for the other's (MKL's threaded eigh
of a 288 x 288 ESPIRiT Gram matrix took 3 s with 2 threads against 7 ms with 1 on the busy
machine). Tests that need another count (reproducing a weight card) set it themselves inside
the ``torch_state`` fixture, which restores it.

The same holds for numba's OpenMP pool (the CT projectors): two workers of two spinning threads
each on two cores made the graphLa demo test take 14 min instead of about 2, so numba gets one
thread per worker too. ``make test`` also distributes whole files (``--dist loadfile``): a
module-scoped fixture that runs a demo then runs once, not once per worker.
"""

import numba
import pytest
import torch

from denoisers.hvae import HVAE

torch.set_num_threads(1)
numba.set_num_threads(1)


@pytest.fixture
def torch_state():
    """For tests that change torch's thread count or deterministic mode: restore both afterwards."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope="module")
def vae() -> HVAE:
    """A small untrained HVAE whose prior/posterior heads are perturbed away from their zero initialisation."""
    torch.manual_seed(0)
    model = HVAE(widths=(8, 16, 16, 16), z_channels=3, strides=(8, 4, 2), enc_blocks=1, dec_blocks=1)
    with torch.no_grad():
        for level in model.levels:
            for head in (level.prior_head, level.post_head):
                head.weight.normal_(0.0, 0.3)
                head.bias.normal_(0.0, 0.3)
    return model.eval()
