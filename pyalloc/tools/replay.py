"""Trace replay: in chunks (``pyalloc replay``), and in steps for the live views
(``pyalloc serve --replay``, ``pyalloc plot --replay``).

``pyalloc replay`` reads and runs a capture a chunk at a time (:func:`replay_chunked`),
so a capture of any length replays in memory that follows its live objects; a monitoring
client wants to watch it happen, so :func:`replay_steps` parses the trace once into a
stream and runs it a slice at a time, yielding after each slice.  Both end as one
``m.run(read_trace(path))`` would (see :func:`pyalloc.machine.trace.trace_chunks`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .._abi import OP_CPU_CURRENT
from ..errors import InvalidArgument

REPLAY_CHUNK = 1 << 20          # operations per chunk: 40 MiB of records and results at most, live ones aside
ERRORS_SHOWN = 10


@dataclass
class ChunkedReplay:
    """What :func:`replay_chunked` did: the machine, the last chunk's stream and result (its
    first ops are the allocations still live from earlier chunks, so ``--verify`` reads the
    end state from them), the operations run, the allocations that failed (NULL), the
    errors (the first ERRORS_SHOWN, numbered as ops of the whole capture, and how many),
    and the seconds spent in ``m.run``."""
    machine: Any
    stream: Any
    result: Any
    ops: int = 0
    failed: int = 0
    nr_errors: int = 0
    errors: list = field(default_factory=list)
    run_s: float = 0.0


def replay_chunked(machine: Callable[[int], Any], path, skip_bad: bool = False, progress=None,
                   chunk: int = REPLAY_CHUNK) -> ChunkedReplay:
    """Replay the capture at *path* chunk by chunk, failed operations recorded (not raised).

    *machine(cpus)* makes the machine once the first chunk is read: *cpus* is the trace's
    ``#P:`` or, without one, the highest CPU that chunk names plus one; a later chunk that
    names a CPU past the machine's is InvalidArgument (pass the machine more CPUs)."""
    from ..machine.trace import trace_chunks
    from ..machine.stream_chunks import run_chunks
    chunks = trace_chunks(path, skip_bad=skip_bad, progress=progress, chunk=chunk)
    first = next(chunks)
    st = first.trace_stats
    ended = hasattr(first, "trace_expect")     # the whole trace fits one chunk: its count is final
    cpus = st["cpus"] if ended else max(min(st.get("header_cpus", 0), OP_CPU_CURRENT), first.max_cpu + 1, 1)
    m = machine(cpus)
    rep = ChunkedReplay(m, first, None)

    def checked():
        yield first
        for stream in chunks:
            if stream.max_cpu >= m.cpus:
                raise InvalidArgument(f"the trace names CPU {stream.max_cpu} after its first {rep.ops} operations "
                                      f"and no #P: header said so: the machine has {m.cpus} CPUs (give it more)")
            yield stream

    try:
        t0 = time.perf_counter()
        for stream, result in run_chunks(m, checked(), errors="record"):
            rep.run_s += time.perf_counter() - t0
            k = len(stream.carried)
            base = rep.ops - k
            raw = result.raw
            rep.failed += sum(1 for i in range(k, len(raw)) if raw[i] == -12)
            rep.nr_errors += len(result.errors)
            for i, exc in result.errors[:ERRORS_SHOWN - len(rep.errors)]:
                rep.errors.append((base + i, exc))
            rep.ops += len(stream) - k
            rep.stream, rep.result = stream, result
            t0 = time.perf_counter()
    except BaseException:
        m.close()
        raise
    return rep


def replay_steps(m, path: str, chunk: int = 2000) -> Iterator[int]:
    """Apply the trace at *path* to machine *m*, *chunk* operations per step;
    yields how many operations have run so far.  Failed operations are
    recorded, not raised, as ``pyalloc replay`` does."""
    from ..machine.trace import read_trace
    stream = read_trace(path, skip_bad=True)
    n = len(stream)
    result = None
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        result = m.run(stream, errors="record", start=start, end=end, result=result)
        yield end
