"""Suite-wide set-up: one torch thread per test process.

``make test`` runs two pytest-xdist workers on two cores; with torch's default of one thread per
core each, every parallel torch region of one worker waits for the other's (MKL's threaded eigh
of a 288 x 288 ESPIRiT Gram matrix took 3 s with 2 threads against 7 ms with 1 on the busy
machine). Tests that need another count (reproducing a weight card) set it themselves inside
the ``torch_state`` fixture, which restores it.

The same holds for numba's OpenMP pool (the CT projectors): two workers of two spinning threads
each on two cores made the graphLa demo test take 14 min instead of about 2, so numba gets one
thread per worker too. Both are set by :func:`operators.kernels.threads.set_num_threads`, which
starts numba's OpenMP layer before setting torch's count: started afterwards, the layer would
reset torch's count to the number of cores. ``make test`` also distributes whole files
(``--dist loadfile``): a module-scoped fixture that runs a demo then runs once, not once per worker.
"""

import numba
import pytest
import torch

from denoisers.hvae import HVAE
from operators.kernels.threads import set_num_threads
from recon.training import loop

set_num_threads(1)


@pytest.fixture
def torch_state():
    """For tests that change thread counts (torch's, numba's) or torch's deterministic mode: restore them afterwards."""
    threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    numba.set_num_threads(numba_threads)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture
def interrupt_run(monkeypatch):
    """``interrupt_run(run, module, name)``: call ``run()`` with every checkpoint written and ``module.name`` raising
    KeyboardInterrupt on its second call (a run stopped in its second epoch), then undo both patches."""

    def interrupt(run, module, name: str) -> None:
        real, calls = getattr(module, name), []

        def second_call_stops(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(loop, "CHECKPOINT_EVERY_S", 0.0)
        monkeypatch.setattr(module, name, second_call_stops)
        with pytest.raises(KeyboardInterrupt):
            run()
        monkeypatch.undo()

    return interrupt


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
