#!/usr/bin/env python
"""Benchmark graphc's compiled training step against hand-written numpy.

Usage::

    python benchmarks/run.py [--cases xor mlp_small ...] [--repeats N] [--quick]

For every case this

1. builds the data and parameters with ``handwritten.make_<case>`` (float64);
2. if ``import graphc`` works, builds the same network with graphc's public
   API, times ``gc.compile(g)`` (the compile time column) and checks that
   ``prog.value_and_grad`` agrees with the hand-written gradients;
   and that one ``prog.sgd_step`` moves the params where one hand-written step
   does (graphc is not timed when either disagrees beyond 1e-9, relative);
3. times, in the same process, each contender against its hand-written
   baseline in interleaved rounds of the two (``time_pairs``), each on its own
   copy of the parameters:

   * hand step: ``handwritten.step_<case>(feeds, params, 0.01)``;
   * sgd_step: ``prog.sgd_step(feeds_and_params, lr)``, the compiled training
     step (forward, backward, SGD updates in place as each param's gradient is
     complete and nothing reads it, so the next call sees them);
   * hand grads: ``handwritten.grads_<case>(feeds, params)``, the same code
     returning its gradients;
   * value_and_grad: ``prog.value_and_grad(feeds_and_params)``;
   * torch step and torch grads: the same in PyTorch (``peers.py``), when it is
     installed and agrees with the hand-written step (else a note says why not);

4. measures the peak memory of one call of each with ``tracemalloc``.

BLAS is limited to one thread before numpy is imported (the thread count
actually in force is printed and recorded).  The markdown table is printed
and written to ``benchmarks/results.md`` (``--output`` to change).  When
graphc cannot be imported, or compiling or running a case fails, the graphc
columns read "n/a" and the error is listed under the table.

Each sample is timed twice at once: in wall time and in the CPU time of the
process (every thread; ``time.process_time``).  A ratio in the table is the
median over the recorded rounds of the ratio within each round, in CPU time:
``median_r(graphc_r / hand_r)``, where a contender and its hand-written
baseline run back to back in every round of their own, the baseline first in
every other one (``harness.round_order``).  On a shared host, CPU time leaves
out the time the process waited for a core, and pairing within a round
cancels the drift of what the core is doing between rounds.  Over seven runs
of ``--repeats 20`` (xor, mlp_small, residual50; load 2.4-4.4 on two cores)
the ratios moved between runs by, on average over the six ratios (and at
most): 0.10 (0.13) for this estimator, 0.09 (0.13) for the ratio of
CPU-time medians, 0.13 (0.16) for the median of per-round wall-time ratios
and 0.29 (0.54) for the ratio of wall-time medians, the estimator used
before.  The millisecond
columns are medians of CPU time per call.  The notes give, per pair, the
quartiles of the per-round ratios in both clocks, a 95 % interval of the
median in CPU time (two order statistics, no assumption on the distribution:
at 30 rounds of mlp_small, load 4.5-5.4 on two cores, it spanned 0.11-0.20,
so a table ratio of 1.02 there does not tell 1.00 apart) and the ratio of medians,
and every contender's wall-time min/median/max.  For very fast steps each
sample is a loop of several calls (the same count for every contender).
Memory is in MB (10**6 bytes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import harness  # noqa: E402  (must come before numpy: it sets the BLAS thread limit)

BLAS_REPORT = harness.limit_blas_threads(1)

import handwritten as hw  # noqa: E402
import numpy as np  # noqa: E402

LR = 0.01
# sections other scripts write into the same file (benchmarks/compile_time.py, fused_kernels.py)
KEPT_SECTIONS = ("\n## Compile time", "\n## Fused kernels")
CASE_NAMES = list(hw.CASES)


# ---------------------------------------------------------------------------
# graphc side
# ---------------------------------------------------------------------------

def import_graphc():
    """Return ``(module, None)`` or ``(None, error message)``."""
    if ROOT not in sys.path:
        sys.path.append(ROOT)
    try:
        import graphc as gc
    except Exception as exc:  # the package may be missing or half-written
        return None, f"{type(exc).__name__}: {exc}"
    return gc, None


def build_xor(gc, feeds, params):
    g = gc.Graph("xor")
    x = g.input("x", shape=("N", feeds["x"].shape[1]))
    y = g.input("y", shape=("N", feeds["y"].shape[1]))
    W1 = g.param("W1", shape=params["W1"].shape)
    b1 = g.param("b1", shape=params["b1"].shape)
    W2 = g.param("W2", shape=params["W2"].shape)
    b2 = g.param("b2", shape=params["b2"].shape)
    h = gc.sigmoid(x @ W1 + b1)
    out = gc.sigmoid(h @ W2 + b2)
    g.output("loss", gc.mse(out, y))
    return g


def _build_mlp(gc, name, feeds, params):
    g = gc.Graph(name)
    x = g.input("x", shape=("N", feeds["x"].shape[1]))
    y = g.input("y", shape=("N", feeds["y"].shape[1]))
    nlayers = len(params) // 2
    h = x
    for i in range(1, nlayers + 1):
        W = g.param(f"W{i}", shape=params[f"W{i}"].shape)
        b = g.param(f"b{i}", shape=params[f"b{i}"].shape)
        h = h @ W + b
        if i < nlayers:
            h = gc.relu(h)
    g.output("loss", gc.softmax_cross_entropy(h, y))
    return g


def build_mlp_small(gc, feeds, params):
    return _build_mlp(gc, "mlp_small", feeds, params)


def build_mlp_large(gc, feeds, params):
    return _build_mlp(gc, "mlp_large", feeds, params)


def build_residual50(gc, feeds, params):
    g = gc.Graph("residual50")
    width = feeds["x"].shape[1]
    x = g.input("x", shape=("N", width))
    y = g.input("y", shape=("N", width))
    h = x
    for i in range(len(params) // 2):
        W = g.param(f"W{i}", shape=params[f"W{i}"].shape)
        b = g.param(f"b{i}", shape=params[f"b{i}"].shape)
        h = h + gc.tanh(h @ W + b)
    g.output("loss", gc.mse(h, y))
    return g


def build_elementwise(gc, feeds, params):
    import sympy

    silu = gc.elementwise("silu", lambda z: z / (1 + sympy.exp(-z)))
    sin, log1p = gc.sin, gc.log1p
    g = gc.Graph("elementwise")
    x = g.input("x", shape=("N", feeds["x"].shape[1]))
    a = g.param("a", shape=params["a"].shape)
    c = g.param("c", shape=params["c"].shape)
    z = x * a + c
    u = silu(z)
    v = gc.tanh(u)
    w = gc.exp(v)
    p = log1p(w)
    q = gc.square(p)
    r = sin(q)
    g.output("loss", gc.mean(r))
    return g


BUILDERS = {
    "xor": build_xor,
    "mlp_small": build_mlp_small,
    "mlp_large": build_mlp_large,
    "residual50": build_residual50,
    "elementwise": build_elementwise,
}


# ---------------------------------------------------------------------------
# one case
# ---------------------------------------------------------------------------

def _copy(d):
    return {k: np.array(v, copy=True) for k, v in d.items()}


def _short(exc):
    text = f"{type(exc).__name__}: {exc}".strip()
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _compare(hand_loss, hand_grads, value, grads):
    """Describe how graphc's loss and gradients compare with the hand-written ones."""
    gloss = float(np.asarray(value["loss"]))
    parts = [f"loss rel. diff {abs(gloss - hand_loss) / max(abs(hand_loss), 1e-300):.1e}"]
    missing = sorted(set(hand_grads) - set(grads))
    extra = sorted(set(grads) - set(hand_grads))
    if missing:
        parts.append(f"missing grads {missing}")
    if extra:
        parts.append(f"unexpected grads {extra}")
    worst = 0.0
    worst_name = None
    for name in sorted(set(hand_grads) & set(grads)):
        ref = hand_grads[name]
        got = np.asarray(grads[name])
        if got.shape != ref.shape:
            parts.append(f"grad {name} has shape {got.shape}, expected {ref.shape}")
            continue
        err = float(np.max(np.abs(got - ref))) / max(float(np.max(np.abs(ref))), 1e-300)
        if err > worst:
            worst, worst_name = err, name
    parts.append(f"max grad rel. error {worst:.1e}" + (f" ({worst_name})" if worst_name else ""))
    if missing or extra or len(parts) > 2:
        worst = float("inf")  # a missing gradient or a wrong shape: not the same computation
    loss_error = abs(gloss - hand_loss) / max(abs(hand_loss), 1e-300)
    return ", ".join(parts), max(worst, loss_error)


def make_graphc_step(prog, feeds, params, lr):
    """The graphc training step: the compiled ``sgd_step`` (forward, backward, then the
    update ``p -= lr * grad`` of each param as soon as nothing reads it), called through
    ``Program.sgd_step``, which checks the feeds on every call.
    """
    feeds_and_params = dict(feeds)
    feeds_and_params.update(params)          # the same arrays: updates are seen next call

    def step():
        return prog.sgd_step(feeds_and_params, lr)["loss"]

    return step


def make_graphc_grads(prog, feeds, params):
    """graphc's ``Program.value_and_grad`` on fixed params (the feeds checked on every call)."""
    feeds_and_params = dict(feeds)
    feeds_and_params.update(params)

    def grads():
        return prog.value_and_grad(feeds_and_params)

    return grads


def _step_disagreement(prog, step, feeds, params0):
    """How far one graphc ``sgd_step`` is from one hand-written step from the same params."""
    hand = _copy(params0)
    step(_copy(feeds), hand, LR)
    mine = _copy(params0)
    arrays = _copy(feeds)
    arrays.update(mine)
    prog.sgd_step(arrays, LR)
    return max(float(np.max(np.abs(mine[k] - hand[k]))) / max(float(np.max(np.abs(hand[k]))), 1e-300)
               for k in hand)


AGREE = 1e-9  # relative: the same computation up to rounding; beyond it graphc is not timed


def _add_peer(case, feeds, params0, step, grads_fn, contenders):
    """Add PyTorch's step and gradients to ``contenders`` when it is installed and agrees
    with the hand-written numpy; return a note saying what happened."""
    try:
        import peers

        torch_step, torch_grads, version = peers.contenders(case, feeds, params0, LR)
    except ImportError as exc:
        return f"{case}: torch n/a: not installed ({exc})"
    hand_loss, hand_grads = grads_fn(_copy(feeds), _copy(params0))
    loss, grads = torch_grads()
    agreement, worst = _compare(hand_loss, hand_grads, {"loss": loss}, grads)
    if not worst <= AGREE:
        return f"{case}: torch not timed: it disagrees with the hand-written step ({agreement})"
    contenders["torch step"] = torch_step
    contenders["torch grads"] = torch_grads
    return f"{case}: {version} vs hand-written: {agreement}"


def _spread(name, times):
    med = harness.median(times)
    return f"{name} {min(times) * 1e3:.4g}/{med * 1e3:.4g}/{max(times) * 1e3:.4g} ms"


def run_case(case, gc, gc_error, repeats, warmup, seed, samples=None):
    """One case's table row and notes; ``samples[case]`` gets every timed sample when a dict is given."""
    make, step, grads_fn = hw.CASES[case]
    feeds, params0 = make(np.random.default_rng(seed))
    notes = []

    hand_params = _copy(params0)
    hand_feeds = _copy(feeds)
    grad_feeds, grad_params = _copy(feeds), _copy(params0)

    def hand_step():
        return step(hand_feeds, hand_params, LR)

    def hand_grads():
        return grads_fn(grad_feeds, grad_params)

    contenders = {"hand step": hand_step, "hand grads": hand_grads}
    compile_s = None
    error = gc_error
    if gc is not None:
        try:
            graph = BUILDERS[case](gc, feeds, params0)
            t0 = time.perf_counter()
            prog = gc.compile(graph)
            compile_s = time.perf_counter() - t0

            hand_loss, hand_grads_ = grads_fn(_copy(feeds), _copy(params0))
            check_feeds = _copy(feeds)
            check_feeds.update(_copy(params0))
            t0 = time.perf_counter()
            value, grads = prog.value_and_grad(check_feeds)
            first_call = time.perf_counter() - t0
            agreement, worst = _compare(hand_loss, hand_grads_, value, grads)
            stepped = _step_disagreement(prog, step, feeds, params0)
            notes.append(f"{case}: graphc vs hand-written: {agreement}; params after one sgd_step: max rel. "
                         f"diff {stepped:.1e}; first value_and_grad call {first_call * 1e3:.1f} ms")
            if not worst <= AGREE or not stepped <= AGREE:
                raise RuntimeError(f"graphc disagrees with the hand-written step beyond {AGREE:g}: not timed")
            contenders["sgd_step"] = make_graphc_step(prog, _copy(feeds), _copy(params0), LR)
            contenders["value_and_grad"] = make_graphc_grads(prog, _copy(feeds), _copy(params0))
            for fn in contenders.values():
                fn()                         # fail here rather than inside the timing loop
        except Exception as exc:
            contenders.pop("sgd_step", None)
            contenders.pop("value_and_grad", None)
            error = _short(exc)
            if os.environ.get("GRAPHC_BENCH_TRACEBACK"):
                traceback.print_exc()

    peer_note = _add_peer(case, feeds, params0, step, grads_fn, contenders)
    if peer_note:
        notes.append(peer_note)

    number = harness.calibrate_number(hand_step, target=0.005)
    timed = time_pairs(contenders, repeats=repeats, warmup=warmup, number=number)
    # tracemalloc sees numpy's buffers, not those of PyTorch's own allocator: no memory for it
    mem = {name: harness.peak_memory(fn) for name, fn in contenders.items() if not name.startswith("torch")}
    med = {name: harness.median(samples_of(timed, name, CLOCK)) for name in contenders}

    def ratio(mine, theirs, values):
        return f"{values[mine] / values[theirs]:.2f}" if mine in values and values[theirs] else "n/a"

    def step_ratio(mine, theirs):
        """The table's estimator: the median over rounds of the ratio within the round."""
        pair = timed.get(f"{mine} / {theirs}")
        if pair is None:
            return "n/a"
        return f"{harness.median(harness.paired_ratios(pair[CLOCK][mine], pair[CLOCK][theirs])):.2f}"

    row = {
        "case": case,
        "hand step (ms)": f"{med['hand step'] * 1e3:.4g}",
        "sgd_step / hand": step_ratio("sgd_step", "hand step"),
        "hand grads (ms)": f"{med['hand grads'] * 1e3:.4g}",
        "value_and_grad / hand": step_ratio("value_and_grad", "hand grads"),
        "torch step / hand": step_ratio("torch step", "hand step"),
        "torch grads / hand": step_ratio("torch grads", "hand grads"),
        "compile (s)": f"{compile_s:.3g}" if compile_s is not None else "n/a",
        "memory sgd_step / hand": ratio("sgd_step", "hand step", mem),
        "memory value_and_grad / hand": ratio("value_and_grad", "hand grads", mem),
    }
    spread = f"{case}: min/median/max " + "; ".join(_spread(name, samples_of(timed, name, "wall"))
                                                    for name in contenders)
    spread += f" ({repeats} rounds x {number} call(s) per sample, wall time)"
    memory = f"{case}: peak memory " + ", ".join(f"{name} {mem[name] / 1e6:.3g} MB" for name in mem)
    notes[:0] = [spread] + _ratio_notes(case, timed) + [memory]
    if error is not None:
        notes.append(f"{case}: graphc n/a: {error}")
    if samples is not None:
        samples[case] = timed
    return row, notes


# (contender, its baseline): each pair is timed in rounds of its own
PAIRS = (("sgd_step", "hand step"), ("value_and_grad", "hand grads"),
         ("torch step", "hand step"), ("torch grads", "hand grads"))
CLOCK = "cpu"  # the clock of the table's ratios (the notes give both)


def time_pairs(contenders, repeats, warmup, number):
    """``{"mine / theirs": timed_rounds({theirs, mine})}`` for every pair of PAIRS present, and
    ``{"theirs": ...}`` alone for a baseline that has no contender.

    Each pair runs in rounds of its own, the two back to back, the baseline first in every
    other round (harness.round_order), so what one contender leaves behind (PyTorch's
    allocator, the cache) falls on both sides of a pair alike. In rounds of all six, a
    contender that ran right after PyTorch in every other round came out slower: xor's
    value_and_grad / hand 1.08-1.12 with the PyTorch contenders in the rounds, 0.97-0.98
    without them (two runs each, load 5).
    """
    timed = {}
    for mine, theirs in PAIRS:
        if mine in contenders:
            pair = {theirs: contenders[theirs], mine: contenders[mine]}
            timed[f"{mine} / {theirs}"] = harness.timed_rounds(pair, repeats=repeats, warmup=warmup, number=number)
    for baseline in ("hand step", "hand grads"):
        if not any(baseline in pair["cpu"] for pair in timed.values()):
            timed[baseline] = harness.timed_rounds({baseline: contenders[baseline]}, repeats=repeats,
                                                   warmup=warmup, number=number)
    return timed


def samples_of(timed, name, clock):
    """``name``'s samples in ``clock``, from the first pair that timed it."""
    return next(pair[clock][name] for pair in timed.values() if name in pair[clock])


def _ratio_notes(case, timed):
    """Per pair: the median and quartiles of the per-round ratios in both clocks, and the
    ratio of the medians (the estimator the table used before), so a reader sees how far
    the estimators and the rounds spread; for the table's clock also a 95 % interval of the
    median (harness.median_interval), which says whether the table's ratio could be 1.00."""
    notes = []
    for mine, theirs in PAIRS:
        pair = timed.get(f"{mine} / {theirs}")
        if pair is None:
            continue
        parts = []
        for clock in ("cpu", "wall"):
            ratios = harness.paired_ratios(pair[clock][mine], pair[clock][theirs])
            q1, mid, q3 = harness.quartiles(ratios)
            of_medians = harness.median(pair[clock][mine]) / harness.median(pair[clock][theirs])
            interval = ""
            if clock == CLOCK:
                low, high = harness.median_interval(ratios)
                interval = f"; 95% interval of the median {low:.3f}-{high:.3f}"
            parts.append(f"{clock} {mid:.3f} (IQR {q1:.3f}-{q3:.3f}{interval}; ratio of medians {of_medians:.3f})")
        notes.append(f"{case}: {mine} / {theirs} per round: " + ", ".join(parts))
    return notes


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=CASE_NAMES, default=CASE_NAMES,
                        help="cases to run (default: all)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="recorded round-robin rounds (default 20, or 5 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="unrecorded warm-up rounds (default 2, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="few rounds, for a fast check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join(HERE, "results.md"),
                        help="markdown file to write (default benchmarks/results.md)")
    parser.add_argument("--samples", default=None,
                        help="also write every sample (seconds per call, per clock, per round) to this JSON file")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (5 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)

    gc, gc_error = import_graphc()
    header = [
        f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()} with {os.cpu_count()} CPU(s)",
        BLAS_REPORT,
        f"float64, SGD lr {LR}, {repeats} recorded rounds after {warmup} warm-up round(s), "
        "each contender in interleaved rounds with its baseline, one process; ratio = median over rounds "
        "of graphc / hand-written in the same round, CPU time" + (" (--quick)" if args.quick else ""),
        "graphc: " + ("imported" if gc is not None else f"not importable ({gc_error})"),
    ]
    load_start = os.getloadavg()[0]
    print("\n".join(header), flush=True)

    rows, notes, samples = [], [], {}
    for case in args.cases:
        print(f"running {case} ...", flush=True)
        row, case_notes = run_case(case, gc, gc_error if gc is None else None,
                                   repeats, warmup, args.seed, samples)
        rows.append(row)
        notes.extend(case_notes)
    if args.samples:  # every sample, for checking an estimator against another
        with open(args.samples, "w") as fh:
            json.dump({"header": header, "samples": samples}, fh)

    # the machine is shared: say how busy it was, since other load skews the ratios
    header.append(f"Load average (1 min): {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
                  f"({os.cpu_count()} CPUs; a busy host slows the work itself too, which CPU time does not "
                  "remove: see the per-round quartiles in the notes)")
    table = harness.format_table(rows)
    print()
    print(table)
    print()
    for note in notes:
        print("- " + note)

    kept = ""  # sections other scripts write (benchmarks/compile_time.py) survive this one
    if os.path.exists(args.output):
        with open(args.output) as fh:
            previous = fh.read()
        starts = [previous.index(h) for h in KEPT_SECTIONS if h in previous]
        if starts:
            kept = previous[min(starts):]
    with open(args.output, "w") as fh:
        fh.write("# graphc benchmark results\n\n")
        fh.write("Produced by `python benchmarks/run.py"
                 + (" --quick" if args.quick else "")
                 + (f" --cases {' '.join(args.cases)}" if args.cases != CASE_NAMES else "")
                 + (f" --repeats {args.repeats}" if args.repeats is not None else "")
                 + "`.\n\n")
        fh.write("\n".join(f"- {line}" for line in header) + "\n\n")
        fh.write(table + "\n\n")
        fh.write("Ratios are medians over the rounds of the ratio within a round (graphc's call and the "
                 "hand-written one back to back), in CPU time of the process; the millisecond columns are "
                 "median CPU time per call. The notes give the quartiles of the per-round ratios (their "
                 "spread), the same in wall time, and the ratio of medians. `sgd_step / hand` is graphc's "
                 "`Program.sgd_step` "
                 "against the hand-written step with its in-place SGD update; `value_and_grad / hand` "
                 "is `Program.value_and_grad` against the same hand-written code returning its "
                 "gradients; the torch columns are the same step and gradients in PyTorch (eager, "
                 "autograd, one thread) when it is installed. Below 1 means faster or leaner. Peak "
                 "memory is the tracemalloc peak of one call (MB in the notes; tracemalloc does not "
                 "see PyTorch's allocator, so it has no memory column).\n\n")
        fh.write("## Notes\n\n")
        fh.write("\n".join(f"- {note}" for note in notes) + "\n")
        fh.write(kept)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
