"""Trace replay in steps, for the live views (``pyalloc serve --replay``, ``pyalloc plot --replay``).

``pyalloc replay`` runs a whole capture at once; a monitoring client wants to
watch it happen, so :func:`replay_steps` parses the trace once into a stream
and runs it a slice at a time, yielding after each slice.
"""

from __future__ import annotations

from typing import Iterator


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
