"""Parameter sweeps: many machines, one table (extra ``pyalloc[sweep]``: dask[distributed], pandas).

``sweep(grid, workload)`` runs *workload* once per point of the product of the
grid's value lists, each on a fresh Machine (or one loaded from a snapshot, the
``snapshot`` parameter), and returns a pandas DataFrame: one row per run, its
parameters first, then the workload's metrics, then ``error`` (empty, or the
exception of a run that failed: its row is kept, its metrics are missing) and
``wall_s``.

Engines: ``"dask"`` submits one task per run to a ``distributed`` scheduler --
the one at *scheduler* (``tcp://host:8786``), or a LocalCluster started for the
sweep with one single-threaded worker process per core (the simulator holds
the GIL in the model and a machine lock in the C core, so threads would not
help); ``"serial"`` runs them in this process.  Rows come back in grid order
whatever finished first, and every run is seeded by its own parameters alone,
so both engines and any number of workers give the same table (``wall_s``
aside).

Built-in workloads (:data:`WORKLOADS`) share the metric columns of
:func:`machine_metrics`: failures per GFP class, the extfrag indices of the
largest zone, slab waste, reclaim and OOM counters, simulated stall time.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from typing import Any, Callable, Iterable, Union

from ..text import debugfs
from ..errors import InvalidArgument, PyallocError
from ..errors import show
from .workload import GFP_CLASSES, Tally, kmalloc_mix, demo_mix, pressure  # noqa: F401 - their old home
from .workload import named as _builtin

MACHINE_PARAMS = ("mem", "cpus", "backend", "min_free_kbytes", "slub_debug", "swap", "slab_merge", "kconfig")
RUN_PARAMS = ("seed", "snapshot")
DEFAULTS = {"mem": "256M", "cpus": 2}

RECLAIM_METRICS = ("pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pswpout", "pswpin",
                   "compact_stall", "compact_success", "compact_fail", "allocstall_normal",
                   "allocstall_movable", "oom_kill")


def machine_metrics(m) -> dict:
    """The machine's side of a row: fragmentation, slab waste, reclaim, OOM, stall time."""
    snap = m.snapshot()
    zone = max(snap["zones"], key=lambda z: z["present"])
    nr_free = [sum(per_type) for per_type in zone["free_area"]]
    out = {"free_kb": sum(z["nr_free_pages"] for z in snap["zones"]) * 4}
    for order in (3, 9):
        out[f"unusable_o{order}"] = debugfs.unusable_free_index(nr_free, order) / 1000
        out[f"extfrag_o{order}"] = debugfs.fragmentation_index(nr_free, order) / 1000
    slab_bytes = waste = 0
    for row in snap["slab_caches"]:
        pages = row["num_slabs"] * row["pagesperslab"]
        slab_bytes += pages * 4096
        waste += pages * 4096 - row["active_objs"] * row["objsize"]
    out["slab_kb"] = slab_bytes >> 10
    out["slab_waste_kb"] = waste >> 10
    ctr = m.reclaim_counters()
    for name in RECLAIM_METRICS:
        out[name] = ctr[name]
    out["stall_us"] = ctr["psi_total_us"]
    return out


# -- built-in workloads (pyalloc.tools.workload) ---------------------------------------

WORKLOADS: dict[str, Callable] = _builtin("sweep")


# -- the grid -------------------------------------------------------------------------

def expand(grid: dict) -> list[dict]:
    """The runs of a grid: the product of its value lists, in key order (the last key varies fastest)."""
    if not isinstance(grid, dict) or not grid:
        raise InvalidArgument(f"sweep: grid must be a non-empty dict of parameter -> list of values, not {show(grid)}")
    keys = list(grid)
    for key in keys:
        if key not in MACHINE_PARAMS and key not in RUN_PARAMS:
            raise InvalidArgument(f"sweep: unknown parameter {show(key)}; known: "
                                  f"{', '.join(MACHINE_PARAMS + RUN_PARAMS)}")
        values = grid[key]
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise InvalidArgument(f"sweep: grid[{key!r}] must be a list of values, not {show(values)}")
    lists = [list(grid[k]) for k in keys]
    for key, values in zip(keys, lists):
        if not values:
            raise InvalidArgument(f"sweep: grid[{key!r}] is empty")
    return [dict(zip(keys, combo)) for combo in itertools.product(*lists)]


class StreamWorkload:
    """A pyalloc.Stream as a workload: run in the core in one call per run (a Stream pickles, so a
    Dask worker gets its own copy).  Metrics: operations, failed allocations, errors recorded."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.__name__ = f"stream of {len(stream)} operations"

    def __call__(self, m, seed: int) -> dict:
        r = m.run(self.stream, errors="record")
        failed = sum(1 for i in range(len(r)) if r.raw[i] == -12)
        return {"operations": len(r), "failed": failed, "errors": len(r.errors)}


class TraceWorkload(StreamWorkload):
    """A kernel ftrace kmem capture (``replay:PATH``): parsed once in the run, replayed as a stream."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.__name__ = f"replay:{path}"

    def __call__(self, m, seed: int) -> dict:
        from ..machine.trace import read_trace
        self.stream = read_trace(self.path, skip_bad=True)
        return super().__call__(m, seed)


def _resolve(workload) -> tuple[str, Callable]:
    from ..machine.stream import Stream
    if isinstance(workload, str) and workload.startswith("replay:"):
        w: StreamWorkload = TraceWorkload(workload[len("replay:"):])
        return w.__name__, w
    if isinstance(workload, str):
        try:
            return workload, WORKLOADS[workload]
        except KeyError:
            raise InvalidArgument(f"sweep: unknown workload {show(workload)}; built in: "
                                  f"{', '.join(sorted(WORKLOADS))}, or replay:TRACE") from None
    if isinstance(workload, Stream):
        w = StreamWorkload(workload)
        return w.__name__, w
    if callable(workload):
        return getattr(workload, "__name__", "workload"), workload
    raise InvalidArgument(f"sweep: workload must be a built-in name, replay:TRACE, a pyalloc.Stream or a function "
                          f"(machine, seed) -> dict, not {show(workload)}")


def run_one(params: dict, workload) -> dict:
    """One run: build (or load) the machine, run the workload, collect the row.  Never raises
    for the run's own failure: the row says what went wrong in ``error``."""
    from ..machine.machine import Machine
    _, fn = _resolve(workload)
    row: dict = {}
    t0 = time.perf_counter()
    try:
        seed = params.get("seed", 0)
        kwargs = {**DEFAULTS, **{k: v for k, v in params.items() if k in MACHINE_PARAMS}}
        if params.get("snapshot"):
            m = Machine.load(params["snapshot"], backend=kwargs.get("backend"))
        else:
            m = Machine(**kwargs, seed=seed)     # the seed drives the machine's random choices too
        with m:
            got = fn(m, seed)
            if not isinstance(got, dict):
                raise TypeError(f"the workload returned {type(got).__name__}, not a dict of metrics")
            row.update(got)
            if fn in WORKLOADS.values() or isinstance(fn, StreamWorkload):
                row.update(machine_metrics(m))
        row["error"] = None
    except Exception as exc:    # a failed run is a row too, never a lost one
        row = {"error": f"{type(exc).__name__}: {exc}"}
    row["wall_s"] = time.perf_counter() - t0
    return row


# -- engines --------------------------------------------------------------------------

def _need(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ImportError(f"pyalloc.sweep needs {module}: pip install 'pyalloc[sweep]'") from None


def _progress(total: int, enabled: bool | None | Callable):
    """The sweep's bar: the caller's own (a function), tqdm on stderr (True, or None while stderr
    is a terminal), or none (False, or None under a pipe or a log file)."""
    if callable(enabled):           # the caller's own bar (the command line's)
        return enabled(total)
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:         # tqdm is a core dependency, but a bare install may lack it
        return None
    return tqdm(total=total, unit="run", desc="sweep", leave=False)


def _run_serial(runs: list, workload, progress: Union[bool, None, Callable[..., Any]]) -> list:
    bar = _progress(len(runs), progress)
    rows = []
    for params in runs:
        rows.append(run_one(params, workload))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return rows


def local_cluster(workers: int | None = None):
    """A LocalCluster of single-threaded worker processes, one per core by default."""
    distributed = _need("distributed")
    n = workers or os.cpu_count() or 1
    return distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                    dashboard_address=None, silence_logs=40)


CHUNKS_PER_SLOT = 4     # enough chunks that a slow one does not leave the other workers idle long


def run_chunk(chunk: list, workload) -> list:
    """Several runs in one task: a task per run costs the scheduler more CPU than a small run
    takes, and on a machine with few cores the scheduler competes with the workers for them."""
    return [run_one(params, workload) for params in chunk]


def _worker_slots(client) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:                   # a scheduler that cannot say: one slot per local core
        return os.cpu_count() or 1


def _chunks(runs: list, slots: int) -> list:
    """*runs* in consecutive chunks, about CHUNKS_PER_SLOT per worker slot (the table keeps the
    runs' order whatever finishes first)."""
    n = max(1, min(len(runs), slots * CHUNKS_PER_SLOT))
    size = -(-len(runs) // n)
    return [runs[i:i + size] for i in range(0, len(runs), size)]


def _run_dask(runs: list, workload, scheduler, workers, progress: Union[bool, None, Callable[..., Any]]) -> list:
    distributed = _need("distributed")
    cluster = None
    if scheduler is None:
        cluster = local_cluster(workers)
        client = distributed.Client(cluster)
    elif isinstance(scheduler, distributed.Client):
        client = scheduler
    else:
        client = distributed.Client(scheduler)
    try:
        chunks = _chunks(runs, _worker_slots(client))
        futures = client.map(run_chunk, chunks, [workload] * len(chunks), pure=False)
        size = {fut.key: len(chunk) for fut, chunk in zip(futures, chunks)}
        bar = _progress(len(runs), progress)
        for fut in distributed.as_completed(futures):
            if bar is not None:
                bar.update(size[fut.key])
            del fut
        if bar is not None:
            bar.close()
        rows = []
        for chunk, fut in zip(chunks, futures):
            try:
                rows.extend(fut.result())
            except Exception as exc:    # the worker itself died: each of its runs still gets its row
                rows.extend({"error": f"{type(exc).__name__}: {exc}", "wall_s": float("nan")} for _ in chunk)
        return rows
    finally:
        if client is not scheduler:
            client.close()
        if cluster is not None:
            cluster.close()


def sweep(grid: dict, workload="kmalloc-mix", engine: str = "dask", scheduler=None, *,
          workers: int | None = None, progress: bool | None | Callable = None):
    """Run *workload* on every point of *grid*; a pandas DataFrame with one row per run.

    grid: Machine parameters (mem, cpus, backend, min_free_kbytes, slub_debug, swap,
    slab_merge, kconfig), ``seed`` (the Machine's seed and the workload's) and ``snapshot``
    (a file from Machine.save) -> lists of values.
    workload: a name from WORKLOADS or a function (machine, seed) -> dict of metrics.
    engine: "dask" (scheduler: an address, a distributed.Client, or None for a
    LocalCluster of *workers* processes, one per core by default) or "serial".
    progress: a tqdm bar on stderr (True), none (False), one while stderr is a terminal (None,
    the default), or a function total -> a bar (with update and close) to show instead.
    The ``error`` column is missing (None) for a run that succeeded, so ``table.error.isna()``
    selects them; a failed run's row holds its exception there.
    """
    pd = _need("pandas")
    runs = expand(grid)
    _resolve(workload)
    if engine == "serial":
        rows = _run_serial(runs, workload, progress)
    elif engine == "dask":
        rows = _run_dask(runs, workload, scheduler, workers, progress)
    else:
        raise InvalidArgument(f"sweep: engine must be 'dask' or 'serial', not {show(engine)}")
    records = []
    for params, row in zip(runs, rows):
        rec = {k: (str(v) if k == "snapshot" else v) for k, v in params.items()}
        rec.update({k: v for k, v in row.items() if k not in ("error", "wall_s")})
        rec["error"] = row.get("error")
        rec["wall_s"] = row.get("wall_s")
        records.append(rec)
    columns = list(runs[0])
    for rec in records:
        for k in rec:
            if k not in columns and k not in ("error", "wall_s"):
                columns.append(k)
    columns += ["error", "wall_s"]
    return pd.DataFrame.from_records(records, columns=columns)


__all__ = ["sweep", "expand", "run_one", "machine_metrics", "WORKLOADS", "GFP_CLASSES", "PyallocError"]
