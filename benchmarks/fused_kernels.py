#!/usr/bin/env python
"""Would a fused-kernel library beat numpy on the elementwise case? Measure it.

Usage::

    python benchmarks/fused_kernels.py [--repeats 9]

The elementwise case of ``benchmarks/run.py`` (``X`` 512x4096, ``z = X*a + c`` then
silu, tanh, exp, log1p, square, sin and the mean, with the gradients for ``a`` and
``c``) is computed three ways, one thread each, interleaved round-robin:

* numpy, hand-written (``handwritten.grads_elementwise``: in-place ufuncs, three buffers);
* numexpr (if installed): each fused region one ``numexpr.evaluate`` over cache-sized
  blocks, the same regions graphc's fusion pass makes;
* numba (if installed): the whole forward and backward as one compiled loop over the
  elements (one pass over memory), its compile time reported apart;
* graphc's own ``value_and_grad``, with ``blocking="off"`` and with the default
  ``blocking="auto"`` (the chain run over blocks of rows that stay in the cache:
  ``graphc/lower/blocking.py``), and at 4, 8, 16 and 32 rows a block (the cost model's
  choice is checked against them);
* PyTorch eager (if installed; ``peers.py``), for the record.

Then residual50's elementwise work in one layer (32x32 arrays, where call overhead
rules) is timed the same three ways. Each contender's results are checked against
numpy's before timing. A
contender that is not installed is listed with the reason. Nothing here is needed by
graphc; it decides whether a fused lowering is worth having.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402  (before numpy: one BLAS thread)

BLAS_REPORT = harness.limit_blas_threads(1)
os.environ["NUMBA_NUM_THREADS"] = "1"

import handwritten as hw  # noqa: E402
import numpy as np  # noqa: E402


def numexpr_grads(numexpr):
    numexpr.set_num_threads(1)

    def ev(expression, out=None, **names):  # the operands named explicitly, not read from the frame
        return numexpr.evaluate(expression, local_dict=names, out=out)

    def grads(feeds, params):
        x, a, c = feeds["x"], params["a"], params["c"]
        n = x.size
        z = ev("x * a + c", x=x, a=a, c=c)
        s = ev("1 / (1 + exp(-z))", z=z)
        d = ev("s * (1 + z * (1 - s))", s=s, z=z)                  # silu'
        v = ev("tanh(z * s)", out=z, z=z, s=s)
        d = ev("d * (1 - v**2) * exp(v) / (1 + exp(v))", out=d, d=d, v=v)
        p = ev("log1p(exp(v))", out=s, v=v)
        loss = float(ev("sum(sin(p**2))", p=p)) / n
        d = ev("d * 2 * p * cos(p**2) / n", out=d, d=d, p=p, n=float(n))
        dc = d.sum(axis=0)
        da = ev("d * x", out=d, d=d, x=x).sum(axis=0)
        return loss, {"a": da, "c": dc}

    return grads


def numba_grads(numba):
    import math

    @numba.njit(fastmath=False, cache=False)
    def kernel(x, a, c):
        rows, cols = x.shape
        da, dc = np.zeros(cols), np.zeros(cols)
        total = 0.0
        for i in range(rows):
            for j in range(cols):
                z = x[i, j] * a[j] + c[j]
                s = 1.0 / (1.0 + math.exp(-z))
                v = math.tanh(z * s)
                w = math.exp(v)
                p = math.log1p(w)
                q = p * p
                total += math.sin(q)
                d = s * (1.0 + z * (1.0 - s)) * (1.0 - v * v) * w / (1.0 + w) * 2.0 * p * math.cos(q)
                dc[j] += d
                da[j] += d * x[i, j]
        return total, da, dc

    def grads(feeds, params):
        n = feeds["x"].size
        total, da, dc = kernel(feeds["x"], params["a"], params["c"])
        return total / n, {"a": da / n, "c": dc / n}

    return grads


def graphc_grads(blocking):
    """graphc's value_and_grad on the elementwise case, compiled with ``blocking``."""
    import run

    import graphc as gc

    feeds, params = hw.make_elementwise(np.random.default_rng(0))
    prog = gc.compile(run.build_elementwise(gc, feeds, params), blocking=blocking)

    def grads(feeds, params):
        outputs, gradients = prog.value_and_grad({**feeds, **params})
        return float(outputs["loss"]), gradients

    return grads


def torch_grads(feeds, params):
    import peers

    _, grads, _ = peers.contenders("elementwise", feeds, params, 0.01)  # the tensors made once, as in run.py
    return lambda feeds_, params_: grads()


HEADING = "## Fused kernels"


def write_section(path, text):
    """Put ``text`` (starting with HEADING) in place of the file's section, or append it."""
    previous = open(path).read() if os.path.exists(path) else ""
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    fresh = pattern.sub(lambda _: text + "\n", previous) if pattern.search(previous) else \
        previous.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as fh:
        fh.write(fresh)


def layer_kernels(rng):
    """residual50's elementwise work in one layer (32x32): the forward ``tanh(t + b)`` and
    the backward ``g * (1 - t**2)``, three ways; each returns ``{name: fn}`` for the
    libraries installed, and the notes for those that are not."""
    t0, b, g = rng.standard_normal((32, 32)), rng.standard_normal(32), rng.standard_normal((32, 32))
    out, back = np.empty_like(t0), np.empty_like(t0)

    def numpy_layer():
        np.add(t0, b, out=out)
        np.tanh(out, out=out)
        np.square(out, out=back)
        np.subtract(1.0, back, out=back)
        np.multiply(g, back, out=back)
        return back

    kernels, notes = {"numpy (hand-written)": numpy_layer}, []
    reference = numpy_layer().copy()
    try:
        import numexpr

        def numexpr_layer():
            numexpr.evaluate("tanh(t + b)", local_dict={"t": t0, "b": b}, out=out)
            return numexpr.evaluate("g * (1 - v**2)", local_dict={"g": g, "v": out}, out=back)

        kernels["numexpr"] = numexpr_layer
    except ImportError as error:
        notes.append(f"numexpr: not installed ({error})")
    try:
        import numba

        @numba.njit(cache=False)
        def fused(t, bias, grad, forward, backward):
            for i in range(t.shape[0]):
                for j in range(t.shape[1]):
                    v = np.tanh(t[i, j] + bias[j])
                    forward[i, j] = v
                    backward[i, j] = grad[i, j] * (1.0 - v * v)
            return backward

        kernels["numba"] = lambda: fused(t0, b, g, out, back)
    except ImportError as error:
        notes.append(f"numba: not installed ({error})")
    for name, fn in list(kernels.items()):
        if not np.allclose(fn(), reference, rtol=1e-12, atol=1e-15):
            notes.append(f"{name}: disagrees with numpy on the layer kernels, not timed")
            del kernels[name]
    return kernels, notes


def _rows(times, unit, scale):
    base = harness.median(times["numpy (hand-written)"])
    return [{"contender": name, f"median ({unit})": f"{harness.median(ts) * scale:.1f}",
             f"min/max ({unit})": f"{min(ts) * scale:.1f}/{max(ts) * scale:.1f}",
             "ratio to numpy": f"{harness.median(ts) / base:.2f}"} for name, ts in times.items()]


def _agreement(reference, result):
    loss, grads = result
    worst = abs(loss - reference[0]) / abs(reference[0])
    for name, ref in reference[1].items():
        worst = max(worst, float(np.max(np.abs(grads[name] - ref)) / np.max(np.abs(ref))))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--output", default=os.path.join(HERE, "results.md"),
                        help="markdown file whose section HEADING is replaced (or appended)")
    args = parser.parse_args(argv)
    feeds, params = hw.make_elementwise(np.random.default_rng(0))
    reference = hw.grads_elementwise(feeds, params)
    contenders = {"numpy (hand-written)": hw.grads_elementwise}
    notes = []
    for name, make in (("numexpr", numexpr_grads), ("numba", numba_grads)):
        try:
            module = __import__(name)
        except ImportError as error:
            notes.append(f"{name}: not installed ({error})")
            continue
        grads = make(module)
        t0 = time.perf_counter()
        result = grads(feeds, params)  # numba compiles here
        first = time.perf_counter() - t0
        error = _agreement(reference, result)
        if not error < 1e-9:
            notes.append(f"{name} {module.__version__}: disagrees with numpy (rel. {error:.1e}), not timed")
            continue
        extra = f", vml {module.use_vml}" if name == "numexpr" else ""
        notes.append(f"{name} {module.__version__}: agrees with numpy to {error:.1e}; first call {first:.2f} s{extra}")
        contenders[name] = grads
    libraries = [name for name in contenders if name != "numpy (hand-written)"]
    for name, blocking in (("graphc, blocking off", "off"), ("graphc, blocked (auto)", "auto"),
                           *((f"graphc, {k} rows a block", k) for k in (4, 8, 16, 32))):
        contenders[name] = graphc_grads(blocking)
    try:
        contenders["PyTorch eager"] = torch_grads(feeds, params)
    except ImportError as error:
        notes.append(f"PyTorch: not installed ({error})")
    for name in [n for n in contenders if n.startswith(("graphc", "PyTorch"))]:
        error = _agreement(reference, contenders[name](feeds, params))
        if not error < 1e-9:
            notes.append(f"{name}: disagrees with numpy (rel. {error:.1e}), not timed")
            del contenders[name]
    calls = {name: (lambda fn=fn: fn(feeds, params)) for name, fn in contenders.items()}
    times = harness.round_robin(calls, repeats=args.repeats, warmup=1)
    base = harness.median(times["numpy (hand-written)"])
    rows = _rows(times, "ms", 1e3)
    kernels, layer_notes = layer_kernels(np.random.default_rng(1))
    layer_times = harness.round_robin(kernels, repeats=args.repeats, warmup=1, number=2000)
    layer_rows = _rows(layer_times, "µs", 1e6)
    timed = [name for name in libraries if name in times]
    slower = [name for name in timed if harness.median(times[name]) > base]
    if slower and len(slower) == len(timed):
        notes.append("no fused-kernel library beats numpy here (numpy's ufuncs use SIMD exp/tanh/log1p/sin; "
                     "numexpr without VML and numba call scalar libm): graphc keeps its numpy kernels")
    section = "\n".join([
        HEADING, "",
        f"Produced by `python benchmarks/fused_kernels.py --repeats {args.repeats}` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}: Python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()} with {os.cpu_count()} CPU(s); {BLAS_REPORT}. The elementwise case's value "
        "and gradients, one thread, interleaved rounds.", "",
        harness.format_table(rows), "",
        *[f"- {note}" for note in notes], "",
        "One layer's elementwise kernels of residual50 (32x32: forward `tanh(t + b)`, backward "
        "`g * (1 - t**2)`), per call, 2000 calls a sample:", "",
        harness.format_table(layer_rows), "",
        *[f"- {note}" for note in layer_notes], "",
    ])
    print(section)
    write_section(args.output, section)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
