"""Many reconstructions with one operator, spread over a Dask cluster, streamed into one HDF5 file.

:func:`reconstruct_many` runs ``method(physics, measurements[i:i+1], **params_i)`` for every index
``i`` of a stack of measurements (slices of a volume, repeated scans, or one scan under a grid of
parameters) on the workers of a ``distributed`` cluster, and stores each result as it arrives.

Design:

* **Tasks.** One task per index. The operator is sent to the workers once (``client.scatter(...,
  broadcast=True)``) and every task refers to that copy; the task itself carries only its
  measurement slice, its keyword arguments and the method (a name from
  :data:`recon.methods.METHOD_NAMES`, resolved on the worker, or a callable, sent by cloudpickle).
  Inside the task torch and numba are set to the worker's thread count (one per worker on the
  default cluster) so that N workers on N cores do not fight over the cores. A task returns the
  image as a numpy array, the method's info split by :func:`recon.io.split_info` into scalars
  and series, and its wall time.
* **One writer.** Only the calling process opens the HDF5 file; results come back to it through
  ``distributed.as_completed`` and are written in completion order, each followed by a flush.
  HDF5 has no safe concurrent writers, and a single writer also means that what the file says is
  done has really been written: an index is marked done only after its image and history.
* **Store layout.**

  - ``x``: (N, *item_shape), the images (``item_shape`` is the method's output without its batch
    dimension of 1), created at the first result, one item per chunk, NaN where not (yet) computed;
  - ``done``: (N,) bool; ``seconds``: (N,) float64, each task's wall time on its worker;
  - ``history/<i>/<series>``: the solver history of item ``i``; the group's attribute ``info``
    holds the method's scalar info fields (JSON text);
  - root attributes: :func:`recon.io.provenance` (versions, ``method``, ``params``, ``geometry``,
    ``input_sha256`` of the whole measurement stack, ``created``) and ``n_items``. ``params`` is
    the JSON of the keyword arguments, or ``{"per_task": [...]}`` for one mapping per index;
    ``geometry`` is the operator's class name and its public scalar attributes (plus a checksum of
    its ``angles`` where it has them).
* **Resume.** When the file exists, its ``method``, ``params``, ``geometry``, ``input_sha256``
  and ``n_items`` must equal this call's (otherwise ``ValueError`` naming the key: results of
  two different runs are never mixed); indices already done are skipped, never resubmitted. An
  interrupted run (Ctrl-C, or an exception raised by ``on_result``) cancels the outstanding tasks,
  closes the file (it stays readable, holding every result that arrived) and the cluster it
  started, and re-raises; calling again with the same arguments finishes the job.
* **Failures.** An exception inside a method fails that index only: it is reported in
  :attr:`BatchReport.failed` with its traceback, a ``RuntimeWarning`` names the failed indices,
  the other results are stored, and a later call recomputes only what is not done. A worker that
  dies is replaced by its nanny and the scheduler reruns its tasks (a task that kills workers
  repeatedly fails with ``KilledWorker``, reported the same way).

The file is locked by HDF5 while a run writes to it; read it when the call has returned.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from distributed import Client, LocalCluster, as_completed, get_worker
from tqdm.auto import tqdm

from operators._validate import check_int
from operators.kernels.threads import set_num_threads
from recon.io import check_hdf5_path, provenance, sha256_array, split_info, write_attrs
from recon.methods import get_method

__all__ = ["BatchReport", "describe_physics", "reconstruct_many"]

#: root attributes that must agree between a store and a call that resumes it
RESUME_KEYS = ("method", "params", "geometry", "input_sha256", "n_items")


@dataclass
class BatchReport:
    """What one call of :func:`reconstruct_many` did.

    Attributes:
        computed: indices computed and stored by this call, in completion order.
        skipped: indices already done in the store (resumed), ascending.
        failed: index -> ``"ExceptionType: message"`` followed by the traceback text.
        seconds: wall time of the call (including starting and closing a cluster).
        store: the HDF5 file.
    """

    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    store: Path = Path()


# ----------------------------------------------------------------------------- worker side


def _set_worker_threads() -> None:
    """Run torch and numba at the executing worker's thread count (no-op outside a worker)."""
    try:
        n = int(get_worker().state.nthreads)
    except ValueError:  # not running on a worker
        return
    set_num_threads(n)  # worker set-up: the worker process is this task's


def _run_task(method: str | Callable, physics, y: np.ndarray, params: dict) -> tuple:
    """One reconstruction on a worker.

    Returns:
        ``(x, scalars, series, seconds, None)`` on success, with ``x`` the method's output as a
        numpy array; ``(None, None, None, seconds, error_text)`` when the method raised.
    """
    t0 = time.perf_counter()
    try:
        _set_worker_threads()
        fn = get_method(method) if isinstance(method, str) else method
        x, info = fn(physics, torch.from_numpy(np.array(y)), **params)
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        scalars, series = split_info(info)
    except Exception as exc:  # noqa: BLE001  (any failure of user code is reported, not raised)
        return None, None, None, time.perf_counter() - t0, _error_text(exc)
    return x, scalars, series, time.perf_counter() - t0, None


def _error_text(exc: BaseException, tb=None) -> str:
    tb_text = "".join(traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__))
    return f"{type(exc).__name__}: {exc}\n\n{tb_text}"


# ----------------------------------------------------------------------------- validation


def _check_method(method: object) -> tuple[str | Callable, str]:
    """``(what the task receives, the name recorded in the store)``."""
    if isinstance(method, str):
        get_method(method)  # raises for unknown names
        return method, method
    if callable(method):
        name = getattr(method, "__qualname__", None) or type(method).__qualname__
        return method, f"{getattr(method, '__module__', None) or '?'}.{name}"
    raise TypeError(f"method: expected a method name (str) or a callable (physics, y, **params) -> (x, info), "
                    f"received {type(method).__name__}")


def _check_measurements(measurements: object) -> np.ndarray:
    if isinstance(measurements, torch.Tensor):
        measurements = measurements.detach().cpu().numpy()
    elif not isinstance(measurements, np.ndarray):
        raise TypeError(f"measurements: expected a numpy array or torch tensor (N, C, ...), "
                        f"received {type(measurements).__name__}")
    if measurements.dtype.kind not in "fc":
        raise TypeError(f"measurements: expected a real or complex floating dtype, received {measurements.dtype}")
    if measurements.ndim < 2 or measurements.shape[0] < 1:
        raise ValueError(f"measurements: expected shape (N, C, ...) with N >= 1, received {measurements.shape}")
    n_bad = int(measurements.size - np.isfinite(measurements).sum())
    if n_bad:
        raise ValueError(f"measurements: expected finite values, received {n_bad} NaN/Inf entries")
    return np.ascontiguousarray(measurements)


def _check_params(params: object, n: int) -> tuple[list[dict], dict]:
    """``(one dict per task, the mapping recorded as provenance)``."""
    if params is None:
        params = {}
    if isinstance(params, Mapping):
        _check_keys("params", params)
        return [dict(params)] * n, dict(params)
    if isinstance(params, Sequence) and not isinstance(params, str | bytes):
        if len(params) != n:
            raise ValueError(f"params: expected one mapping per measurement ({n}), received a sequence of {len(params)}")
        for i, p in enumerate(params):
            if not isinstance(p, Mapping):
                raise TypeError(f"params[{i}]: expected a mapping of keyword arguments, received {type(p).__name__}")
            _check_keys(f"params[{i}]", p)
        per_task = [dict(p) for p in params]
        return per_task, {"per_task": per_task}
    raise TypeError(f"params: expected a mapping, a sequence of {n} mappings or None, received {type(params).__name__}")


def _check_keys(name: str, params: Mapping) -> None:
    bad = [k for k in params if not isinstance(k, str)]
    if bad:
        raise TypeError(f"{name}: expected keyword names (str), received keys {bad!r}")


def _check_client(client: object, n_workers: object) -> int | None:
    if client is not None and not isinstance(client, str | Client):
        raise TypeError(f"client: expected None, a scheduler address (str) or a distributed.Client, "
                        f"received {type(client).__name__}")
    if n_workers is None:
        return None
    if client is not None:
        raise ValueError(f"n_workers: only used when reconstruct_many starts its own cluster (client=None); "
                         f"received n_workers={n_workers!r} with a client")
    return check_int("n_workers", n_workers, minimum=1)


def describe_physics(physics: object) -> dict:
    """A small JSON-able description of an operator for the store's ``geometry`` attribute.

    The class name, the public attributes that are numbers, strings or tuples of them
    (``img_size``, ``n_angles``, ``n_detectors``, ``backend``, ...), and ``angles_sha256`` when the
    operator has an ``angles`` array or tensor.

    Example:
        >>> describe_physics(ParallelBeamCT(32, angles, backend="numba"))["n_angles"]
        30
    """
    scalar = bool | int | float | str
    geometry: dict = {"class": type(physics).__name__}
    for key, value in sorted(getattr(physics, "__dict__", {}).items()):
        if key.startswith("_") or key == "training":  # training: nn.Module state, not geometry
            continue
        if isinstance(value, scalar) or (isinstance(value, tuple) and all(isinstance(v, scalar) for v in value)):
            geometry[key] = value
    try:
        angles = getattr(physics, "angles", None)
    except Exception:  # noqa: BLE001  (a property that cannot answer simply is not described)
        angles = None
    if isinstance(angles, torch.Tensor):
        angles = angles.detach().cpu().numpy()
    if isinstance(angles, np.ndarray):
        geometry["angles_sha256"] = sha256_array(angles)
    return geometry


# ----------------------------------------------------------------------------- store


def _open_store(fh, attrs: Mapping, path: Path) -> np.ndarray:
    """Initialise a new store or check that an existing one belongs to this call; return ``done``."""
    n = int(attrs["n_items"])
    if "n_items" not in fh.attrs:
        if len(fh.keys()) or len(fh.attrs):
            raise ValueError(f"store: {str(path)!r} is an HDF5 file that reconstruct_many did not write "
                             f"(no 'n_items' attribute); expected a new file or a store of an earlier run")
        write_attrs(fh, attrs)
        fh.create_dataset("done", shape=(n,), dtype=bool, fillvalue=False)
        fh.create_dataset("seconds", shape=(n,), dtype=np.float64, fillvalue=np.nan)
        fh.create_group("history")
        fh.flush()
        return np.zeros(n, dtype=bool)
    for key in RESUME_KEYS:
        stored = fh.attrs.get(key)
        stored = stored.item() if isinstance(stored, np.generic) else stored
        if isinstance(stored, bytes):
            stored = stored.decode()
        if stored != attrs[key]:
            raise ValueError(
                f"store: {str(path)!r} holds results of a different run: its {key!r} is {_short(stored)}, "
                f"this call's is {_short(attrs[key])}; expected the same {', '.join(RESUME_KEYS)} to resume "
                f"(use another file, or delete this one to start over)"
            )
    return np.asarray(fh["done"][()], dtype=bool)


def _short(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _store_result(fh, i: int, x: np.ndarray, scalars: dict, series: dict, seconds: float) -> None:
    """Write item ``i`` (image, history, info, time), then mark it done and flush."""
    n = int(fh.attrs["n_items"])
    if x.ndim < 1 or x.shape[0] != 1:
        raise ValueError(f"expected the method to return x of shape (1, ...) for one measurement, received {x.shape}")
    if "x" not in fh:
        fill = np.nan if x.dtype.kind in "fc" else 0
        fh.create_dataset("x", shape=(n, *x.shape[1:]), dtype=x.dtype, chunks=(1, *x.shape[1:]), fillvalue=fill)
    if fh["x"].shape[1:] != x.shape[1:]:
        raise ValueError(f"expected the method to return x of shape (1, {', '.join(map(str, fh['x'].shape[1:]))}) "
                         f"like the items before it, received {x.shape}")
    fh["x"][i] = x[0]
    history = fh["history"]
    if str(i) in history:  # left by a run interrupted before it marked i done
        del history[str(i)]
    group = history.create_group(str(i))
    for name, arr in series.items():
        group.create_dataset(name, data=arr)
    write_attrs(group, {"info": scalars})
    fh["seconds"][i] = seconds
    fh["done"][i] = True
    fh.flush()


# ----------------------------------------------------------------------------- driver


def reconstruct_many(
    method: str | Callable,
    physics,
    measurements: np.ndarray | torch.Tensor,
    store: str | os.PathLike,
    params: Mapping | Sequence[Mapping] | None = None,
    client: Client | str | None = None,
    n_workers: int | None = None,
    on_result: Callable[[int, np.ndarray, dict], None] | None = None,
    progress: bool | None = None,
) -> BatchReport:
    """Reconstruct every measurement of a stack on a Dask cluster, streaming results into HDF5.

    Task ``i`` computes ``x_i, info_i = method(physics, measurements[i:i+1], **params_i)`` on a
    worker; the calling process writes ``x_i[0]`` to ``store["x"][i]`` as soon as it arrives.
    Calling again with the same arguments resumes: only indices not yet done are computed.

    Args:
        method: a name from :data:`recon.methods.METHOD_NAMES` (``"tv"``, ``"fbp"``, ...), or a
            callable ``(physics, y, **params) -> (x, info)`` that the workers can unpickle
            (cloudpickle: a module-level function of an importable module, or a closure).
        physics: the operator shared by all tasks (picklable; sent to the workers once).
        measurements: (N, C, ...) numpy array or torch tensor, finite, real or complex; task ``i``
            receives ``measurements[i:i+1]`` as a torch tensor of the same dtype, (1, C, ...).
        store: ``.h5`` / ``.hdf5`` file the results stream into (created with its folder when
            missing; resumed when it holds an earlier run of the same call).
        params: keyword arguments of the method: one mapping for every task, or a sequence of N
            mappings (one per measurement, e.g. a parameter grid over a repeated measurement).
            Their JSON is part of the store's identity, so values should have a stable ``repr``.
        client: None to start a ``distributed.LocalCluster`` for this call (``n_workers``
            processes of one thread each) and close it afterwards; a scheduler address
            (``"tcp://host:8786"``); or a ``distributed.Client`` to use (left open).
        n_workers: workers of the cluster started when ``client`` is None (default
            ``os.cpu_count()``).
        on_result: ``on_result(i, x_i, info_scalars)`` is called in this process after item ``i``
            is stored, with ``x_i`` (C, ...) as stored; an exception raised there interrupts the
            run (outstanding tasks are cancelled, the store keeps what was written).
        progress: tqdm bar over the tasks; None means "only when stderr is a terminal".

    Returns:
        A :class:`BatchReport`: indices computed, skipped (already done) and failed (with
        tracebacks), wall seconds and the store's path. Failures do not raise; a
        ``RuntimeWarning`` names them.

    Raises:
        TypeError, ValueError: invalid arguments (the message names the argument), or an existing
            store whose method, params, geometry, input checksum or size differ from this call's.

    Example:
        >>> physics = ParallelBeamCT(128, angles, backend="numba")
        >>> y = physics.A(volume[:, None])                     # (64, 1, n_angles, n_detectors)
        >>> report = reconstruct_many("tv", physics, y, "slices.h5", params={"alpha": 0.02})
        >>> with h5py.File("slices.h5") as fh:
        ...     x = fh["x"][()]                               # (64, 1, 128, 128)
    """
    import h5py  # noqa: PLC0415

    t_start = time.perf_counter()
    method_ref, method_name = _check_method(method)
    meas = _check_measurements(measurements)
    n = meas.shape[0]
    per_task, params_record = _check_params(params, n)
    path = check_hdf5_path("store", store)
    n_workers = _check_client(client, n_workers)
    if on_result is not None and not callable(on_result):
        raise TypeError(f"on_result: expected a callable (i, x, info) or None, received {type(on_result).__name__}")
    show = sys.stderr.isatty() if progress is None else bool(progress)

    attrs = provenance(method_name, params_record, geometry=describe_physics(physics), input_sha256=sha256_array(meas))
    attrs = {**attrs, "n_items": n}

    report = BatchReport(store=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "a") as fh:
        done = _open_store(fh, attrs, path)
        report.skipped = np.flatnonzero(done).tolist()
        todo = np.flatnonzero(~done).tolist()
        if todo:
            _run(fh, method_ref, physics, meas, per_task, todo, client, n_workers, on_result, show, report)
    report.seconds = time.perf_counter() - t_start
    if report.failed:
        warnings.warn(
            f"reconstruct_many: {len(report.failed)} of {len(todo)} tasks failed, indices "
            f"{sorted(report.failed)} (see BatchReport.failed); the others are stored in {str(path)!r}, "
            f"and calling again computes only what is missing",
            RuntimeWarning,
            stacklevel=2,
        )
    return report


def _run(fh, method_ref, physics, meas, per_task, todo, client, n_workers, on_result, show, report) -> None:
    """Submit the tasks of ``todo``, store results as they complete; manage the cluster we start."""
    own_cluster = own_client = None
    index: dict[str, int] = {}
    pending: dict[str, object] = {}
    bar = tqdm(total=len(todo), desc="reconstruct_many", disable=not show, leave=False)
    try:
        if client is None:
            own_cluster = LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                dashboard_address=None,
                # no dashboard; the scheduler's small HTTP server (health, metrics) on a free local
                # port rather than 8787, which a cluster of the user's may hold already
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
            client = own_client = Client(own_cluster)
        elif isinstance(client, str):
            client = own_client = Client(client)
        physics_future = client.scatter(physics, broadcast=True, hash=False)
        run_id = uuid.uuid4().hex[:12]
        for i in todo:
            fut = client.submit(_run_task, method_ref, physics_future, meas[i : i + 1], per_task[i],
                                key=f"reconstruct_many-{run_id}-{i}")
            index[fut.key] = i
            pending[fut.key] = fut
        for fut in as_completed(list(pending.values()), loop=client.loop):
            _collect(fh, index[fut.key], fut, on_result, report)
            del pending[fut.key]  # releases the result on the worker
            bar.update()
    except BaseException:  # KeyboardInterrupt, or on_result raised: stop the rest, keep what is stored
        if pending:
            client.cancel(list(pending.values()))
        raise
    finally:
        bar.close()
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def _collect(fh, i: int, fut, on_result, report: BatchReport) -> None:
    """Fetch one finished task, store it or record its failure, then call ``on_result``."""
    if fut.status == "error":  # the task never returned: e.g. KilledWorker, unpicklable arguments
        report.failed[i] = _error_text(fut.exception(), fut.traceback())
        return
    x, scalars, series, seconds, error = fut.result()
    if error is not None:
        report.failed[i] = error
        return
    try:
        _store_result(fh, i, x, scalars, series, seconds)
    except ValueError as exc:  # a result that does not fit the store (shape) fails its index only
        report.failed[i] = _error_text(exc)
        return
    report.computed.append(i)
    if on_result is not None:
        on_result(i, x[0], dict(scalars, seconds=seconds))
