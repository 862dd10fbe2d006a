"""Tests of recon.batch.reconstruct_many: results, resume, failures and worker loss on a real cluster.

Every test uses a tiny problem (32 x 32 COULE-like images, 30 parallel-beam views, TV with a
fixed alpha and 25 iterations) and, except the one that checks the client=None path, one
module-scoped two-process LocalCluster. The methods defined here (``slow_tv``, ``flaky_tv``)
reach the workers by cloudpickle, by reference: the spawned workers inherit this process's
``sys.path`` and import this module.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import h5py
import numpy as np
import pytest
import torch
from distributed import Client, LocalCluster

import recon
from operators import ParallelBeamCT
from recon.batch import BatchReport, reconstruct_many

N_ITEMS = 8
TV = {"alpha": 0.05, "max_iter": 25, "progress": False}


def slow_tv(physics, y, delay=0.0, log="", tag=None, **kwargs):
    """recon.tv after a pause (tasks long enough to lose a worker mid-run); logs "tag pid" at start."""
    if log:
        with open(log, "a") as fh:
            fh.write(f"{tag} {os.getpid()}\n")
    time.sleep(delay)
    return recon.tv(physics, y, **kwargs)


def flaky_tv(physics, y, marker="", **kwargs):
    """recon.tv that fails while the file ``marker`` exists (a transient failure fixed between runs)."""
    if marker and os.path.exists(marker):
        raise ValueError(f"flaky_tv: marker file {marker} is present")
    return recon.tv(physics, y, **kwargs)


def bounded(fn, *args, timeout: float = 120.0, **kwargs):
    """Run ``fn`` in a thread; fail the test (instead of hanging the suite) after ``timeout`` s."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn, *args, **kwargs).result(timeout=timeout)
    except FutureTimeout:
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not finish within {timeout} s")
    finally:
        pool.shutdown(wait=False)


def read_store(path) -> tuple[np.ndarray | None, np.ndarray, dict]:
    with h5py.File(path, "r") as fh:
        x = fh["x"][()] if "x" in fh else None
        return x, fh["done"][()], dict(fh.attrs)


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    cl = Client(cluster)
    yield cl
    cl.close()
    cluster.close()


@pytest.fixture(scope="module")
def problem():
    """``(physics, y, sequential)``: y (12, 1, 30, 46) float32 with 1 % noise and recon.tv of each slice."""
    physics = ParallelBeamCT(32, torch.linspace(0.0, math.pi, 31)[:-1], backend="numba")
    x_true = torch.cat([recon.phantoms.coule_like(32, seed=s) for s in range(12)])
    y = recon.noise.add_relative_noise(physics.A(x_true), 0.01, seed=0)
    sequential = np.concatenate([recon.tv(physics, y[i : i + 1], **TV)[0].numpy() for i in range(12)])
    return physics, y.numpy(), sequential


def test_cluster_results_equal_sequential_with_provenance(client, problem, tmp_path):
    physics, y, seq = problem
    store = tmp_path / "tv.h5"
    report = reconstruct_many("tv", physics, y[:N_ITEMS], store, params=TV, client=client, progress=False)
    assert isinstance(report, BatchReport) and report.store == store
    assert sorted(report.computed) == list(range(N_ITEMS)) and report.skipped == [] and report.failed == {}
    x, done, attrs = read_store(store)
    assert done.all() and x.shape == (N_ITEMS, 1, 32, 32)
    np.testing.assert_allclose(x, seq[:N_ITEMS], atol=1e-6, rtol=0)
    assert attrs["method"] == "tv" and attrs["n_items"] == N_ITEMS
    assert '"alpha": 0.05' in attrs["params"] and attrs["regrecon_version"] and len(attrs["input_sha256"]) == 64
    assert '"class": "ParallelBeamCT"' in attrs["geometry"] and '"n_angles": 30' in attrs["geometry"]
    with h5py.File(store, "r") as fh:
        assert (fh["seconds"][()] > 0).all()
        assert '"n_iter": 25' in fh["history/3"].attrs["info"]
        assert fh["history/3/history/objective"].shape == (25,)


def test_killed_worker_every_index_stored_once(client, problem, tmp_path):
    physics, y, seq = problem
    n = 12
    log = tmp_path / "starts.log"
    params = [{**TV, "delay": 0.4, "log": str(log), "tag": i} for i in range(n)]
    killed = []

    def kill_one_worker(i, x, info):
        if not killed:
            pid = sorted(client.run(os.getpid).values())[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    store = tmp_path / "killed.h5"
    report = bounded(reconstruct_many, slow_tv, physics, y, store, params=params, client=client,
                     on_result=kill_one_worker, progress=False, timeout=120)
    assert killed and report.failed == {}
    assert len(report.computed) == len(set(report.computed)) == n
    assert sorted(report.computed) == list(range(n))
    x, done, _ = read_store(store)
    assert done.all()
    np.testing.assert_allclose(x, seq, atol=1e-6, rtol=0)
    starts = [tuple(map(int, line.split())) for line in log.read_text().splitlines()]
    assert len(starts) > n, "no task was rerun: the kill missed the run"  # the lost task(s) ran twice
    client.wait_for_workers(2, timeout=90)  # the nanny's replacement is back for the next tests
    assert killed[0] not in client.run(os.getpid).values()


def test_interrupted_run_resumes_with_only_the_rest(client, problem, tmp_path):
    physics, y, seq = problem
    store = tmp_path / "resume.h5"
    seen = []

    def interrupt_after_three(i, x, info):
        seen.append(i)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reconstruct_many("tv", physics, y[:N_ITEMS], store, params=TV, client=client,
                         on_result=interrupt_after_three, progress=False)
    x, done, _ = read_store(store)  # readable after the interruption
    assert sorted(np.flatnonzero(done).tolist()) == sorted(seen)
    assert np.isnan(x[~done]).all() and np.isfinite(x[done]).all()

    report = reconstruct_many("tv", physics, y[:N_ITEMS], store, params=TV, client=client, progress=False)
    assert report.skipped == sorted(seen)
    assert sorted(report.computed) == sorted(set(range(N_ITEMS)) - set(seen))
    x, done, _ = read_store(store)
    assert done.all()
    np.testing.assert_allclose(x, seq[:N_ITEMS], atol=1e-6, rtol=0)

    report = reconstruct_many("tv", physics, y[:N_ITEMS], store, params=TV, client=client, progress=False)
    assert report.computed == [] and report.skipped == list(range(N_ITEMS))


def test_failed_task_reported_others_stored_then_rerun_fixes_it(client, problem, tmp_path):
    physics, y, seq = problem
    n = 4
    marker = tmp_path / "fail-me"
    marker.touch()
    params = [{**TV, "marker": str(marker) if i == 2 else ""} for i in range(n)]
    store = tmp_path / "flaky.h5"
    with pytest.warns(RuntimeWarning, match=r"indices \[2\]"):
        report = reconstruct_many(flaky_tv, physics, y[:n], store, params=params, client=client, progress=False)
    assert list(report.failed) == [2]
    assert report.failed[2].startswith("ValueError: flaky_tv: marker file") and "Traceback" in report.failed[2]
    assert sorted(report.computed) == [0, 1, 3]
    x, done, attrs = read_store(store)
    assert done.tolist() == [True, True, False, True] and np.isnan(x[2]).all()
    assert attrs["method"].endswith("flaky_tv") and '"per_task"' in attrs["params"]

    marker.unlink()
    report = reconstruct_many(flaky_tv, physics, y[:n], store, params=params, client=client, progress=False)
    assert report.computed == [2] and report.skipped == [0, 1, 3] and report.failed == {}
    x, done, _ = read_store(store)
    assert done.all()
    np.testing.assert_allclose(x, seq[:n], atol=1e-6, rtol=0)


def test_store_of_another_run_is_refused(client, problem, tmp_path):
    physics, y, _ = problem
    store = tmp_path / "other.h5"
    reconstruct_many("tv", physics, y[:2], store, params=TV, client=client, progress=False)
    with pytest.raises(ValueError, match="'params'"):
        reconstruct_many("tv", physics, y[:2], store, params={**TV, "alpha": 0.1}, client=client)
    with pytest.raises(ValueError, match="'input_sha256'"):
        reconstruct_many("tv", physics, y[2:4], store, params=TV, client=client)
    with pytest.raises(ValueError, match="'method'"):
        reconstruct_many(slow_tv, physics, y[:2], store, params=TV, client=client)
    other = ParallelBeamCT(32, torch.linspace(0.0, math.pi, 31)[:-1] + 0.01, backend="numba")
    with pytest.raises(ValueError, match="'geometry'"):
        reconstruct_many("tv", other, y[:2], store, params=TV, client=client)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as fh:
        fh["data"] = np.zeros(3)
    with pytest.raises(ValueError, match="store: .*did not write"):
        reconstruct_many("tv", physics, y[:2], foreign, params=TV, client=client)


def _bad_y():
    y = np.ones((2, 1, 30, 46), dtype=np.float32)
    y[1, 0, 3, 4] = np.nan
    return y


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ({"method": "no_such_method"}, ValueError, "method: unknown method 'no_such_method'"),
        ({"method": 42}, TypeError, "method: expected"),
        ({"measurements": [[1.0, 2.0]]}, TypeError, "measurements: expected a numpy array or torch tensor"),
        ({"measurements": np.ones(5, dtype=np.float32)}, ValueError, r"measurements: expected shape \(N, C, ...\)"),
        ({"measurements": _bad_y()}, ValueError, "measurements: expected finite values, received 1 NaN/Inf"),
        ({"measurements": np.ones((2, 1, 3), dtype=np.int64)}, TypeError, "measurements: expected a real or complex"),
        ({"params": [TV]}, ValueError, r"params: expected one mapping per measurement \(2\), received a sequence of 1"),
        ({"params": [TV, 3]}, TypeError, r"params\[1\]: expected a mapping"),
        ({"params": "alpha=0.1"}, TypeError, "params: expected a mapping"),
        ({"store": "out.npy"}, ValueError, "store: expected a file ending in .h5 or .hdf5, received 'out.npy'"),
        ({"store": 3}, TypeError, "store: expected a path"),
        ({"n_workers": 0}, ValueError, "n_workers: expected an integer >= 1, received 0"),
        ({"n_workers": 2, "client": "tcp://127.0.0.1:1"}, ValueError, "n_workers: only used when"),
        ({"client": 3.5}, TypeError, "client: expected None, a scheduler address"),
    ],
)
def test_bad_arguments_are_named(problem, tmp_path, override, error, match):
    physics, y, _ = problem
    kwargs = {"method": "tv", "physics": physics, "measurements": y[:2], "store": tmp_path / "bad.h5", "params": TV}
    kwargs.update(override)
    with pytest.raises(error, match=match):
        reconstruct_many(**kwargs)  # validation happens before any cluster is contacted
    assert not (tmp_path / "bad.h5").exists()


def test_without_client_starts_and_closes_its_own_cluster(client, problem, tmp_path):
    """client=None: a private cluster runs the tasks and is closed, also when the run is interrupted."""
    physics, y, seq = problem
    store = tmp_path / "own.h5"
    before = {p.pid for p in multiprocessing.active_children()}
    during: list[set[int]] = []

    def interrupt_after_one(i, x, info):
        during.append({p.pid for p in multiprocessing.active_children()})
        raise KeyboardInterrupt

    def interrupted_run():
        with pytest.raises(KeyboardInterrupt):
            reconstruct_many("tv", physics, y[:3], store, params=TV, n_workers=2, on_result=interrupt_after_one,
                             progress=False)

    bounded(interrupted_run, timeout=120)
    assert len(during[0] - before) >= 2  # its two worker processes (nannies) were running
    time.sleep(0.5)
    leaked = {p.pid for p in multiprocessing.active_children()} - before
    assert not leaked, f"processes left running after the call: {leaked}"

    report = reconstruct_many("tv", physics, y[:3], store, params=TV, client=client, progress=False)
    assert len(report.skipped) == 1 and sorted(report.skipped + report.computed) == [0, 1, 2]
    x, done, _ = read_store(store)
    assert done.all()
    np.testing.assert_allclose(x, seq[:3], atol=1e-6, rtol=0)
