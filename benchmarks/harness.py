"""Generic timing and memory helpers for the graphc benchmarks.

Nothing here knows about graphc or about the benchmark cases.

``limit_blas_threads(n=1)``
    Restrict BLAS (and OpenMP) to ``n`` threads and report what is actually
    in force.  The environment variables ``OMP_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` (and a few siblings) are
    only read when the BLAS library is loaded, i.e. when numpy is first
    imported, so call this before anything imports numpy.  If
    ``threadpoolctl`` is importable it is used as well, which also works
    after numpy has been imported, and its report of the loaded BLAS
    libraries is returned.  This module itself never imports numpy at
    import time for that reason.

``round_robin(callables, repeats, warmup=1, number=1)``
    Time several callables in the same process, interleaved: every round runs
    each callable once, and the order changes from round to round (see
    ``round_order``), so slow drifts of the machine (frequency scaling, other
    load, cache state) hit all contenders alike.  The first ``warmup`` rounds
    are run but not recorded.  For very fast callables ``number`` > 1 makes
    each sample a loop of ``number`` back-to-back calls, reported per call.
    Returns ``{name: [seconds per call, ...]}`` (wall time).

``timed_rounds(callables, repeats, warmup=1, number=1)``
    The same rounds, each sample timed with two clocks at once: wall time
    (``time.perf_counter``) and the CPU time of the process, every thread
    (``time.process_time``), which leaves out the time the process waited for
    a core while other programs ran.  Returns ``{"wall": {name: [...]},
    "cpu": {name: [...]}}``; sample ``r`` of every contender comes from round
    ``r``.

``round_order(names, r)``
    The order of round ``r``: the names rotated by an even offset, reversed
    in odd rounds.  Neighbours at positions 2i and 2i+1 (a contender and its
    baseline) stay next to each other in every round, each first in half of
    them.

``paired_ratios(mine, theirs)``
    The per-round ratios ``mine[r] / theirs[r]`` of two contenders timed in
    the same rounds.

``quartiles(values)``
    ``(q1, median, q3)`` of a non-empty sequence.

``median_interval(values, confidence=0.95)``
    ``(low, high)``: a confidence interval of the median that assumes nothing
    about the distribution (two order statistics), so a reader can tell
    whether a median ratio of 1.02 is distinguishable from 1.00.

``calibrate_number(fn, target=0.005)``
    How many back-to-back calls of ``fn`` take at least ``target`` seconds
    (for choosing ``number``).

``median(values)``
    Median of a non-empty sequence.

``peak_memory(fn)``
    Peak bytes allocated during one call of ``fn`` as seen by
    ``tracemalloc`` (numpy reports its array buffers to tracemalloc), after
    one untraced warm-up call so that one-off caches do not count.  Memory
    that was already allocated before the call is not counted.

``format_table(rows, columns=None)``
    Render a list of dicts (or of sequences, with ``columns``) as a
    GitHub-flavoured markdown table.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
import tracemalloc

__all__ = [
    "limit_blas_threads", "round_robin", "timed_rounds", "round_order", "paired_ratios", "calibrate_number",
    "median", "quartiles", "median_interval", "peak_memory", "format_table",
]

_THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# Keeps the threadpoolctl limiter alive for the life of the process.
_LIMITER = None


def limit_blas_threads(n: int = 1) -> str:
    """Limit BLAS to ``n`` threads; return a one-line description of the result.

    The description names the BLAS libraries found and the thread count each
    reports, e.g. ``"BLAS threads in force: 1 (openblas 0.3.27, pthreads)"``.
    If the count cannot be verified (no threadpoolctl) the description says
    so and lists the environment variables that were set.
    """
    global _LIMITER
    numpy_was_loaded = "numpy" in sys.modules
    for var in _THREAD_ENV_VARS:
        os.environ[var] = str(n)

    import numpy  # noqa: F401  (loads the BLAS library with the limits above)

    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None

    if threadpoolctl is None:
        if numpy_was_loaded:
            return ("BLAS threads in force: unknown (numpy was imported before the "
                    "limit was set and threadpoolctl is not installed)")
        return (f"BLAS threads in force: {n} presumed (set {', '.join(_THREAD_ENV_VARS)}={n} "
                "before importing numpy; threadpoolctl not installed to verify)")

    _LIMITER = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    try:
        threadpoolctl.threadpool_limits(limits=n, user_api="openmp")
    except Exception:  # no OpenMP runtime loaded: nothing to limit
        pass
    libs = [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]
    if not libs:
        return f"BLAS threads in force: no BLAS library found by threadpoolctl (env vars set to {n})"
    counts = sorted({info.get("num_threads") for info in libs})
    details = ", ".join(
        f"{info.get('internal_api', '?')} {info.get('version') or ''}".strip()
        + (f" {info['threading_layer']}" if info.get("threading_layer") else "")
        + f": {info.get('num_threads')} thread(s)"
        for info in libs
    )
    count = counts[0] if len(counts) == 1 else "/".join(str(c) for c in counts)
    return f"BLAS threads in force: {count} ({details}; verified with threadpoolctl)"


def round_robin(callables, repeats: int, warmup: int = 1, number: int = 1):
    """Time ``callables`` (a dict name -> zero-argument callable) interleaved.

    Runs ``warmup + repeats`` rounds, round ``r`` in the order ``round_order(names, r)``;
    each callable's sample is timed with ``time.perf_counter`` around ``number``
    consecutive calls and divided by ``number``.  A garbage collection is done between
    rounds (never inside a timed sample).  Returns ``{name: [seconds] * repeats}``.
    """
    return timed_rounds(callables, repeats, warmup, number)["wall"]


def round_order(names, r: int) -> list:
    """The order of round ``r``: ``names`` rotated left by an even offset, reversed when ``r`` is odd.

    A contender at position 2i and its baseline at 2i+1 run back to back in every round
    (the rotation moves pairs whole), the baseline first in every other round.
    """
    names = list(names)
    k = len(names)
    if not k:
        return names
    shift = (2 * (r // 2)) % k
    order = names[shift:] + names[:shift]
    return order[::-1] if r % 2 else order


def timed_rounds(callables, repeats: int, warmup: int = 1, number: int = 1):
    """``round_robin``'s rounds, each sample timed in wall time and in the process's CPU time.

    Returns ``{"wall": {name: [seconds per call] * repeats}, "cpu": {...}}``.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    if number < 1:
        raise ValueError("number must be >= 1")
    names = list(callables)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    loop = range(number)
    wall_clock, cpu_clock = time.perf_counter, time.process_time
    for r in range(warmup + repeats):
        gc.collect()
        for name in round_order(names, r):
            fn = callables[name]
            c0 = cpu_clock()
            t0 = wall_clock()
            for _ in loop:
                fn()
            t1 = wall_clock()
            c1 = cpu_clock()
            if r >= warmup:
                wall[name].append((t1 - t0) / number)
                cpu[name].append((c1 - c0) / number)
    return {"wall": wall, "cpu": cpu}


def paired_ratios(mine, theirs) -> list:
    """``[mine[r] / theirs[r]]``: the ratio of each round, both timed in it."""
    if len(mine) != len(theirs):
        raise ValueError(f"paired samples differ in number: {len(mine)} and {len(theirs)}")
    return [a / b for a, b in zip(mine, theirs)]


def calibrate_number(fn, target: float = 0.005, limit: int = 100000) -> int:
    """Smallest power of two ``n`` such that ``n`` calls of ``fn`` take >= ``target`` s."""
    n = 1
    while n < limit:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= target:
            break
        n *= 2
    return n


def median(values):
    """Median of a non-empty sequence of numbers."""
    xs = sorted(values)
    if not xs:
        raise ValueError("median of an empty sequence")
    mid = len(xs) // 2
    if len(xs) % 2:
        return xs[mid]
    return 0.5 * (xs[mid - 1] + xs[mid])


def quartiles(values) -> tuple:
    """``(q1, median, q3)`` of a non-empty sequence (q1 and q3: medians of the lower and upper halves)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("quartiles of an empty sequence")
    half = len(xs) // 2
    lower, upper = xs[:half] or xs, xs[len(xs) - half:] or xs
    return median(lower), median(xs), median(upper)


def median_interval(values, confidence: float = 0.95) -> tuple:
    """``(low, high)``: the order statistics ``x_(k)`` and ``x_(n+1-k)`` of the sorted values,
    with the largest ``k`` for which they bracket the true median with probability at least
    ``confidence``, for any continuous distribution of independent samples.

    Each sample lies below the median with probability 1/2, so the number below it is
    Binomial(n, 1/2), and the interval misses the median with probability
    ``2 * P(Binomial(n, 1/2) <= k - 1)``. With too few values for ``confidence`` (fewer
    than six for 95 %) it is the whole range, which then covers less.
    """
    xs = sorted(values)
    n = len(xs)
    if not n:
        raise ValueError("median interval of an empty sequence")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    tail = (1 - confidence) / 2
    k, below = 1, 0.0  # below: P(Binomial(n, 1/2) <= k - 1)
    for j in range(n // 2):
        below += math.comb(n, j) / 2 ** n  # exact big-int division, correctly rounded
        if below > tail:
            break
        k = j + 1
    return xs[k - 1], xs[n - k]


def peak_memory(fn) -> int:
    """Peak bytes allocated during one call of ``fn`` (tracemalloc), after a warm-up call."""
    fn()
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0, peak - base)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def format_table(rows, columns=None) -> str:
    """Render ``rows`` as a markdown table.

    ``rows`` is a list of dicts (columns default to the keys of the first
    row, in order; missing keys render empty) or a list of sequences, in
    which case ``columns`` gives the header.  Values are rendered with
    ``str``; format numbers before passing them in.
    """
    rows = list(rows)
    if columns is None:
        if not rows or not isinstance(rows[0], dict):
            raise ValueError("columns are required unless rows are dicts")
        columns = list(rows[0])
    columns = list(columns)
    body = []
    for row in rows:
        if isinstance(row, dict):
            cells = [row.get(col) for col in columns]
        else:
            cells = list(row)
            if len(cells) != len(columns):
                raise ValueError(f"row has {len(cells)} cells, expected {len(columns)}")
        body.append([_cell(c) for c in cells])
    header = [_cell(c) for c in columns]
    widths = [max([3, len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(header), "| " + " | ".join("-" * w for w in widths) + " |"]
    out.extend(line(r) for r in body)
    return "\n".join(out)
