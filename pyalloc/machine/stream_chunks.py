"""Run a stream that arrives in pieces: a long capture replayed in bounded memory.

:func:`pyalloc.machine.trace.trace_chunks` yields a capture as Streams, each time its
operations so far should run: the same stream, grown, or a new one whose first
``len(stream.carried)`` records are copies of the allocations the previous one left live
(``stream.carried[j]`` is the handle of record j's original there).  :func:`run_chunks`
runs each from where it stopped, or a new one from its first own op with the copies'
results and states taken from the previous one's result, so a free in one stream of an
object allocated in another is the free one stream of all the operations would run: the
machine ends as it would after ``m.run`` of them all, and only the live objects and one
stream are ever held.

    >>> import pyalloc
    >>> from pyalloc.machine.trace import trace_chunks
    >>> from pyalloc.machine.stream_chunks import run_chunks
    >>> with pyalloc.Machine(mem="64M", backend="model") as m:        # doctest: +SKIP
    ...     for stream, result in run_chunks(m, trace_chunks("kmem.txt.xz", chunk=100_000)):
    ...         pass
"""

from __future__ import annotations

from typing import Iterable, Iterator

from ..errors import InvalidArgument
from .stream import Stream, StreamResult


def _carry_results(stream: Stream, prev: StreamResult | None) -> StreamResult:
    """A result for a new *stream*, its carried ops' entries copied from *prev*."""
    carried = getattr(stream, "carried", ())
    k = len(carried)
    if k > len(stream):
        raise InvalidArgument(f"run_chunks: the stream carries {k} ops but has only {len(stream)}")
    if k and prev is None:
        raise InvalidArgument("run_chunks: the first stream carries ops from no earlier one")
    result = StreamResult(stream)
    if k:
        assert prev is not None
        raw, state, n, rec, old = prev.raw, prev.state, len(prev.raw), stream._rec, prev.stream._rec
        for j, h in enumerate(carried):
            if not 0 <= h < n or rec[4 * j:4 * j + 4] != old[4 * h:4 * h + 4]:
                raise InvalidArgument(f"run_chunks: op {j} is no copy of op {h} of the previous stream")
            result.raw[j], result.state[j] = raw[h], state[h]
    result.pos = k
    return result


def run_chunks(m, chunks: Iterable[Stream], errors: str = "raise") -> Iterator[tuple[Stream, StreamResult]]:
    """Run the streams *chunks* yields on machine *m* (``m.run(stream, errors=errors,
    start=..., result=...)``) and yield (stream, result) after each run; ``result.pos``
    is where the next run of the same stream starts.  See the module docstring.  A new
    stream whose ``carried`` does not name copies of the previous one's ops is
    InvalidArgument, with the machine unchanged by it."""
    current: Stream | None = None
    result: StreamResult | None = None
    for stream in chunks:
        if stream is not current:
            result = _carry_results(stream, result)
            current = stream
        else:
            assert result is not None
            grow = len(stream) - len(result.raw)
            if grow < 0:
                raise InvalidArgument("run_chunks: a stream shrank between its runs")
            result.raw.frombytes(bytes(8 * grow))
            result.state.extend(bytes(grow))
        result = m.run(stream, errors=errors, start=result.pos, result=result)
        yield stream, result
