"""Fuzz graph files: Hypothesis over the JSON format and over the custom-op expression grammar.

Every input goes the way ``graphc check`` takes a file: ``gc.io.loads``, ``gc.compile``, a
forward pass, ``value_and_grad`` and ``gc.check_gradients`` on seeded random feeds. A ``GraphcError`` is a right
answer; any other exception is an untyped error, and an input that takes more than
``--slow`` seconds of CPU time (2 by default) is slow: CPU time, because the machine may be
shared and wall time then measures the neighbours too (both are reported; an input still
running after a minute of wall time is stopped and reported). Both are printed with the input that caused
them; the run ends with inputs/second and the counts.

    .venv/bin/python benchmarks/fuzz_io.py --minutes 10          # both grammars, half each
    .venv/bin/python benchmarks/fuzz_io.py --corpus              # time tests/hostile_corpus.py
    .venv/bin/python benchmarks/fuzz_io.py --replay graphc-out/fuzz/*.json  # what a run kept
    .venv/bin/python benchmarks/fuzz_io.py --examples 60 --seed 0  # what the CI smoke test runs

Each finding's whole input is kept in graphc-out/fuzz/. Exit status 1 when an untyped error
or a slow input was found.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.cli import random_feeds

SLOW_SECONDS = 2.0
HANG_SECONDS = 60  # an input still running after this is stopped and reported as slow


# -- what one input does ---------------------------------------------------------------------

@dataclass
class Findings:
    inputs: int = 0
    typed: int = 0
    results: int = 0
    untyped: list = field(default_factory=list)  # (exception type, message, input)
    slow: list = field(default_factory=list)  # (seconds, input)
    slowest: float = 0.0  # CPU seconds
    slowest_wall: float = 0.0

    def summary(self, seconds: float) -> str:
        rate = self.inputs / seconds if seconds else 0.0
        return (f"{self.inputs} inputs in {seconds:.0f} s ({rate:.1f} inputs/s): {self.typed} typed errors, "
                f"{self.results} results, {len(self.untyped)} untyped errors, {len(self.slow)} over "
                f"{SLOW_SECONDS:g} s of CPU (slowest {self.slowest:.2f} s of CPU, {self.slowest_wall:.2f} s of wall "
                "time)")


class _Hang(BaseException):
    """Raised by the alarm in an input that runs for HANG_SECONDS (not an Exception: nothing catches it)."""


def _on_alarm(signum, frame):
    raise _Hang()


def run_one(text: str, findings: Findings, echo=print) -> None:
    """Load, compile and run one file's text, and file the outcome under ``findings``."""
    findings.inputs += 1
    started, cpu = time.perf_counter(), time.process_time()
    outcome = None
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(HANG_SECONDS)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            graph = gc.io.loads(text, source="<fuzz>")
            prog = gc.compile(graph)
            feeds = random_feeds(graph.nx)
            prog.forward(feeds)
            if prog.has_gradient:
                prog.value_and_grad(feeds)
                gc.check_gradients(prog, feeds, raise_on_failure=False)
        findings.results += 1
    except gc.GraphcError:
        findings.typed += 1
    except _Hang:
        outcome = f"stopped after {HANG_SECONDS} s"
    except Exception as error:  # noqa: BLE001 - what the fuzzer is looking for
        findings.untyped.append((type(error).__name__, str(error)[:300], text))
        echo(f"UNTYPED {type(error).__name__}: {str(error)[:300]}\n  input: {_kept(text)}")
    finally:
        if hasattr(signal, "SIGALRM"):
            signal.alarm(0)
    seconds, wall = time.process_time() - cpu, time.perf_counter() - started
    findings.slowest, findings.slowest_wall = max(findings.slowest, seconds), max(findings.slowest_wall, wall)
    if seconds > SLOW_SECONDS or outcome:
        findings.slow.append((seconds, text))
        echo(f"SLOW {seconds:.2f} s of CPU ({wall:.2f} s wall) {outcome or ''}\n  input: {_kept(text)}")


KEEP = Path("graphc-out/fuzz")  # every finding's whole input is written here


def _kept(text: str) -> str:
    """Write a finding's input to KEEP; its path and its first characters, for the log."""
    KEEP.mkdir(parents=True, exist_ok=True)
    path = KEEP / f"{zlib.crc32(text.encode('utf-8', 'surrogatepass')):08x}.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return f"{path} {text[:300]}"


# -- the expression grammar -------------------------------------------------------------------

FUNCTIONS = sorted(gc.io.FUNCTIONS)
NUMBERS = st.one_of(
    st.integers(-20, 20).map(str),
    st.integers(-(10**16), 10**16).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.sampled_from(["0", "0.0", "1e308", "1e-320", "2.0", "(1/3)", "(-1)", "(-8)", "10**15", "1e999"]),
)


def operands(arity: int):
    good = st.sampled_from([f"x{k}" for k in range(arity)])
    return st.one_of(good, good, good, st.sampled_from([f"x{arity}", "y", "exp", "__import__"]))


def expressions(arity: int):
    """Expression text from the file grammar, sometimes with a piece of syntax outside it."""
    leaves = st.one_of(NUMBERS, operands(arity))

    def grow(inner):
        unary = st.tuples(st.sampled_from(["-", "+"]), inner).map(lambda t: f"({t[0]}{t[1]})")
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})")
        call = st.tuples(st.sampled_from(FUNCTIONS), st.lists(inner, min_size=1, max_size=6)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})")
        odd = st.tuples(inner, st.sampled_from(["//", "%", "@", "<", " if 1 else ", ".real", "[0]"])).map(
            lambda t: f"({t[0]}{t[1]}{'' if t[1].startswith(('.', '[')) else '1'})")
        return st.one_of(unary, binary, binary, call, call, odd)

    return st.recursive(leaves, grow, max_leaves=40)


KINKS = st.one_of(st.just(""), st.text(max_size=30), st.sampled_from(["a\nb", "\x00", "\ud800", "x" * 300]))
_names = itertools.count()


@st.composite
def custom_op_files(draw) -> str:
    """The base file with one or two of its nodes replaced by custom ops from the grammar."""
    data = _base()
    arity = draw(st.integers(1, 2))
    name = f"fuzz_op_{next(_names)}"
    entry = {"arity": arity, "expr": draw(expressions(arity)), "kink": draw(KINKS)}
    data["custom_ops"] = {name: entry}
    if arity == 1:
        next(n for n in data["nodes"] if n["op"] == "exp")["op"] = name
    else:
        next(n for n in data["nodes"] if n["op"] == "mul")["op"] = name
    return json.dumps(data)


# -- the JSON format ---------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.sampled_from([0, 1, 2, 3, -1, 64, 65, 10**7]),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["N", "x", "w", "loss", "float32", "int64", "\x1b[2J", "\ud800", "../..", "", "relu", "exp"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["tuple", "dim", "float", "array", "op", "x"]), inner, max_size=2),
        st.builds(lambda d, s, v: {"array": {"dtype": d, "shape": s, "data": v}},
                  st.sampled_from(["float64", "int64", "bool", "object"]), st.lists(st.integers(0, 3), max_size=3),
                  st.lists(inner, max_size=6)),
        st.lists(inner, max_size=3).map(lambda v: {"tuple": v}),
    ),
    max_leaves=12,
)


def _paths(value, prefix=()):
    """Every (path, value) inside a JSON value, the value itself first."""
    yield prefix, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from _paths(inner, prefix + (key,))


def _at(value, path):
    for key in path:
        value = value[key]
    return value


@st.composite
def mutated_files(draw) -> str:
    """A valid file (the base or a zoo graph) with a few edits: values replaced, keys dropped or added."""
    data = draw(st.sampled_from(_SEEDS))()
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p, _ in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent, key = _at(data, path[:-1]), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add", "copy"]))
        if action == "replace":
            parent[key] = draw(VALUES)
        elif action == "drop":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "op", "attrs", "kink", "shape", "key"]))] = draw(VALUES)
        elif action == "add":
            parent.append(draw(VALUES))
        elif isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[key])))
    text = json.dumps(data, allow_nan=True)
    if draw(st.integers(0, 9)) == 0:  # now and then, a break in the JSON text itself
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "1e999", "NaN", "\\ud800", '"', "}", "{" * 50])) + text[cut:]
    return text


def _base() -> dict:
    g = gc.Graph("plain")
    x = g.input("x", shape=("N", 2))
    w = g.param("w", shape=(2,))
    b = g.param("b", shape=())
    g.output("loss", gc.mean(gc.exp(gc.sum(x * w, axis=1) + b) ** 2))
    return gc.io.to_data(g)


def _zoo(name: str):
    return lambda: gc.io.to_data(gc.zoo.get(name)()[0])


_SEEDS = [_base, _zoo("relu_neuron"), _zoo("residual"), _zoo("recall_xor"), _zoo("mlp")]


# -- driving Hypothesis for a while -----------------------------------------------------------

class _TimeUp(BaseException):
    """Ends a Hypothesis run when its time is over (not an Exception, so it is not a failure)."""


def fuzz(strategy, seconds: float, findings: Findings, examples: int | None = None, seed: int = 0,
         echo=print) -> None:
    """Feed ``strategy``'s files to :func:`run_one` for ``seconds`` (or ``examples`` inputs).

    The same ``seed`` gives the same inputs, in the same order.
    """
    deadline = time.perf_counter() + seconds

    @hypothesis.seed(seed)
    @settings(max_examples=examples or 10**9, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=["generate"], print_blob=False)
    @given(strategy)
    def check(text):
        if time.perf_counter() > deadline:
            raise _TimeUp()
        run_one(text, findings, echo)

    try:
        check()
    except _TimeUp:
        pass


def time_corpus(echo=print) -> Findings:
    """Each hostile corpus input, timed the way ``graphc check`` runs it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from hostile_corpus import CASES

    findings = Findings()
    for case in CASES:
        data = case.data()
        text = data if isinstance(data, str) else json.dumps(data)
        started = time.perf_counter()
        run_one(text, findings, echo)
        echo(f"  {case.name:<36} {time.perf_counter() - started:6.3f} s")
    return findings


def main(argv: list[str] | None = None) -> int:
    global SLOW_SECONDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="how long to fuzz, both grammars (default 1)")
    parser.add_argument("--examples", type=int, help="stop each grammar after this many inputs instead")
    parser.add_argument("--seed", type=int, help="the same seed gives the same inputs (default: a new one, printed)")
    parser.add_argument("--only", choices=["json", "expr"], help="fuzz one grammar only")
    parser.add_argument("--slow", type=float, default=SLOW_SECONDS, help="seconds that make an input slow")
    parser.add_argument("--corpus", action="store_true", help="time the hostile corpus instead of fuzzing")
    parser.add_argument("--replay", nargs="+", metavar="FILE", help="run kept inputs again instead of fuzzing")
    args = parser.parse_args(argv)
    SLOW_SECONDS = args.slow
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    started = time.perf_counter()
    if args.corpus:
        findings = time_corpus()
    elif args.replay:
        findings = Findings()
        for name in args.replay:
            began = time.perf_counter()
            run_one(Path(name).read_text(encoding="utf-8", errors="surrogatepass"), findings)
            print(f"  {name}: {time.perf_counter() - began:.3f} s")
    else:
        findings = Findings()
        grammars = [("json", mutated_files()), ("expr", custom_op_files())]
        chosen = [(n, s) for n, s in grammars if args.only in (None, n)]
        print(f"seed {seed} (--seed {seed} repeats this run)", flush=True)
        for name, strategy in chosen:
            before, began = findings.inputs, time.perf_counter()
            fuzz(strategy, args.minutes * 60 / len(chosen), findings, args.examples, seed)
            spent = time.perf_counter() - began
            print(f"{name}: {findings.inputs - before} inputs in {spent:.0f} s "
                  f"({(findings.inputs - before) / max(spent, 1e-9):.1f}/s)", flush=True)
    print(findings.summary(time.perf_counter() - started))
    return 1 if findings.untyped or findings.slow else 0


if __name__ == "__main__":
    sys.exit(main())
