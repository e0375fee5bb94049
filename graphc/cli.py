"""The ``graphc`` command line: demo, compile, code, render, explore, check, train, zoo.

A target is a graph file (``net.json``, see :mod:`graphc.io`) or a zoo name
(``graphc zoo`` lists them); ``--variant KEY=VALUE`` (or ``--variant FLAG``) sets a zoo
graph's keyword, as ``--variant dead_output`` or ``--variant depth=40``. Bad input is one
line on stderr and exit status 2; a failed gradient check prints its table and exits with 1.
A file is untrusted: what it names is printed escaped (no terminal control sequence gets
through), output folders are named after the file's path, never after names inside it, and
``--limit`` raises the loader's limits (:class:`graphc.io.Limits`).
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import train_command
from .arguments import non_negative_int, positive_int
from .errors import GradientError, GraphcError
from .limits import LIMIT_NAMES, Limits

if TYPE_CHECKING:
    import numpy as np

# The compiler, sympy, networkx and the zoo are imported by the commands that use them:
# ``graphc --help`` (and a typo's usage message) comes before any of them is needed.

__all__ = ["main", "sgd", "random_feeds", "resolve", "variant_settings", "printable", "out_folder"]

DEMO_NETWORK = "two_moons"
DEMO_STEPS = 60  # full-batch SGD steps the demo's explorer page replays


# ----------------------------------------------------------------------------------------
# Targets and feeds.

def _setting_value(text: str, default):
    """A keyword's value from text, typed like its default: bool, int, float, tuple of ints, str."""
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, tuple):
        return tuple(int(part) for part in text.split(","))
    return text


def variant_settings(function: Callable, variants) -> dict:
    """Keyword arguments for a zoo function from ``["dead_output", "depth=40", "widths=2,8,1"]``.

    >>> from graphc import zoo
    >>> variant_settings(zoo.wide_relu, ["dead_output"]), variant_settings(zoo.deep_sigmoid, ["depth=40"])
    ({'dead_output': True}, {'depth': 40})
    """
    params = inspect.signature(function).parameters
    choices = ", ".join(f"{n}={p.default!r}" for n, p in params.items())
    out = {}
    for variant in variants:
        key, _, text = variant.partition("=")
        key = key.strip()
        if key not in params:
            raise GraphcError(f"{function.__name__} has no variant {key!r}; its settings are {choices}")
        default = params[key].default
        if not text and not isinstance(default, bool):
            raise GraphcError(f"variant {key!r} of {function.__name__} needs a value: --variant {key}=VALUE "
                              f"(default {default!r})")
        try:
            out[key] = _setting_value(text or "true", default)
        except ValueError as error:
            raise GraphcError(f"variant {variant!r} of {function.__name__}: {error} "
                              f"(default {default!r})") from None
    return out


def resolve(target: str, variants=(), limits: Limits | None = None):
    """(graph, feeds) for a zoo name (with its variant settings) or a graph file; feeds are random for a file."""
    from . import zoo
    from .io import load

    path = Path(target)
    if target in zoo.NAMES and not path.is_file():
        function = zoo.get(target)
        return function(**variant_settings(function, variants or ()))
    if variants:
        raise GraphcError(f"--variant sets a zoo graph's keyword; {target!r} is a file, not a zoo graph")
    if path.suffix == ".json" or os.path.lexists(path):
        graph = load(path, limits)
        return graph, random_feeds(graph.nx)
    raise GraphcError(f"{target!r} is neither a graph file nor a zoo graph; the zoo has {', '.join(zoo.NAMES)}")


def out_folder(target: str) -> Path:
    """The default output folder: ``graphc-out/`` and the target's file name, made safe.

    Only the command line's own text names it; a graph file's contents never choose a path.

    >>> out_folder("nets/xor.json"), out_folder("relu_neuron"), out_folder("../..json")
    (PosixPath('graphc-out/xor'), PosixPath('graphc-out/relu_neuron'), PosixPath('graphc-out/graph'))
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(target).stem).strip(".") or "graph"
    return Path("graphc-out") / stem


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on written as an escape, line by line.

    Names come from files, and a name holding ANSI or OSC sequences (``\\x1b[2J``), other
    control characters, bidirectional overrides or lone surrogates reaches the terminal only
    as the escape text.

    >>> printable("loss\\x1b]0;owned\\x07 and\\u202emore")
    'loss\\\\x1b]0;owned\\\\x07 and\\\\u202emore'
    """
    if text.isprintable():
        return text
    return "\n".join("".join(c if c.isprintable() else _escape(c) for c in line) for line in text.split("\n"))


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _say(text: str, file=None) -> None:
    print(printable(text), file=file or sys.stdout)


def random_feeds(graph, size: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded standard-normal feeds for every input and param; symbolic dims get ``size``."""
    import numpy as np
    import sympy

    from . import ir

    rng = np.random.default_rng(seed)
    feeds = {}
    for name in ir.sources(graph):
        shape = tuple(size if isinstance(d, sympy.Symbol) else int(d) for d in graph.nodes[name][ir.SHAPE])
        feeds[name] = rng.standard_normal(shape)
    return feeds


# ----------------------------------------------------------------------------------------
# Training: the lecture's update rule, W <- W - eta * dL/dW, on shuffled minibatches.

def sgd(prog, feeds: dict, epochs: int, lr: float, batch: int = 20, seed: int = 0,
        on_epoch: Callable[[int, float, dict], None] | None = None) -> dict[str, np.ndarray]:
    """Train ``prog``'s params by minibatch SGD; returns the trained feeds.

    Inputs whose first dim is the batch (every input with the same number of rows) are
    shuffled together each epoch; ``on_epoch(epoch, loss on all data, feeds)`` reports progress.
    """
    import numpy as np

    from . import ir

    feeds = {k: np.array(v, dtype=float) for k, v in feeds.items()}
    inputs = prog.graph.graph[ir.INPUTS]
    rows = len(feeds[inputs[0]]) if inputs else 1
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(rows)
        for start in range(0, rows, batch):
            chosen = order[start:start + batch]
            step = {**feeds, **{name: feeds[name][chosen] for name in inputs}}
            _, grads = prog.value_and_grad(step)
            for name, grad in grads.items():
                feeds[name] -= lr * grad
        if on_epoch is not None:
            on_epoch(epoch, float(np.sum(prog.forward(feeds)["loss"])), feeds)
    return feeds


def accuracy(prog, feeds: dict) -> float:
    """Share of rows classified right: threshold 0.5 for one column, argmax for several."""
    import numpy as np

    pred, target = prog.forward(feeds)["g"], feeds["y"]
    if pred.shape[-1] == 1:
        return float(np.mean((pred > 0.5) == (target > 0.5)))
    return float(np.mean(pred.argmax(axis=-1) == target.argmax(axis=-1)))


def progress_bar(done: int, total: int, loss: float, width: int = 30) -> str:
    """``[#########.....]  30/60  loss 0.1234`` as plain text.

    >>> progress_bar(15, 60, 0.25, width=8)
    '[##......]  15/60  loss 0.250000'
    """
    filled = int(round(width * done / total)) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>3}/{total}  loss {loss:.6f}"


# ----------------------------------------------------------------------------------------
# Steps the demo and the subcommands share. A missing part (no Graphviz, no renderer yet)
# is reported on one line and the rest goes on.

def compile(graph, wrt=None):  # noqa: A001 - the commands' compiler, imported when a command runs
    from .pipeline import compile as compile_graph

    return compile_graph(graph, wrt=wrt)


def _try(what: str, step: Callable[[], object]) -> object | None:
    try:
        return step()
    except (GraphcError, ImportError, NotImplementedError, OSError) as error:
        _say(f"  {what}: skipped ({type(error).__name__}: {_one_line(error)})")
        return None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _render(prog, out: Path, fmt: str, feeds=None, stages=None) -> list[Path]:
    paths = prog.render(out, format=fmt, feeds=feeds, stages=stages)
    return [Path(p) for p in paths]


def _demo(args: argparse.Namespace) -> int:
    if args.data == "digits":
        return _demo_digits(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from . import zoo
    from .gradcheck import check_for_page
    from .report import write_report

    graph, feeds = zoo.get(DEMO_NETWORK)()
    print(f"graphc demo: {zoo.summary(DEMO_NETWORK)}")
    started = time.perf_counter()
    prog = compile(graph)
    print(f"compiled {graph.name!r} in {time.perf_counter() - started:.2f} s: stages "
          + ", ".join(f"{name} ({g.number_of_nodes()} nodes)" for name, g in prog.stages.items()))
    print(f"  generated code -> {prog.save(out / 'model_gen.py')}")
    paths = _try("stage drawings", lambda: _render(prog, out / "stages", "svg"))
    if paths:
        print(f"  {len(paths)} stage drawings -> {out / 'stages'}")
    report = _gradient_check(prog, feeds)
    print(f"training by SGD (w <- w - {args.lr} dL/dw, batches of {args.batch}) for {args.epochs} epochs")
    start_loss = float(prog.forward(feeds)["loss"])
    print(f"  epoch   0  loss {start_loss:.6f}  accuracy {accuracy(prog, feeds):.3f}")
    every = max(1, args.epochs // 6)
    tty = sys.stderr.isatty()

    def on_epoch(epoch: int, loss: float, now: dict) -> None:
        if tty:
            print("\r" + progress_bar(epoch, args.epochs, loss), end="", file=sys.stderr, flush=True)
        if epoch % every == 0 or epoch == args.epochs:
            if tty:
                print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
            print(f"  epoch {epoch:>3}  loss {loss:.6f}  accuracy {accuracy(prog, now):.3f}")

    trained = sgd(prog, feeds, args.epochs, args.lr, args.batch, on_epoch=on_epoch)
    final_loss = float(prog.forward(trained)["loss"])
    print(f"final loss {final_loss:.6f} (from {start_loss:.6f}), accuracy {accuracy(prog, trained):.3f}")
    if _try("values drawing", lambda: _render(prog, out / "values", "svg", feeds=trained, stages=["scheduled"])):
        print(f"  the trained values on the graph -> {out / 'values'}")
    explorer = _try("explorer", lambda: prog.explore(out / "explore.html", feeds=feeds, train=DEMO_STEPS, lr=args.lr))
    if explorer:
        print(f"  explorer ({DEMO_STEPS} SGD steps replayed from the initial params) -> {explorer}")
    trained_note = f"the params after {args.epochs} epochs of SGD"
    if _try("report", lambda: write_report(prog, out / "report.html", trained, explorer, trained_note,
                                                     check_for_page(prog, trained))):
        print(f"  report -> {out / 'report.html'}")
    return 0 if report is None or report.ok else 1


def _demo_digits(args: argparse.Namespace) -> int:
    """The digits MLP trained by SGD with the demo's settings (graphc train digits_mlp --data digits)."""
    from . import zoo

    print(f"graphc demo: {zoo.summary('digits_mlp')}")
    return train_command.run(argparse.Namespace(
        net="digits_mlp", data="digits", out=args.out, epochs=args.epochs, batch_size=args.batch,
        optimizer="sgd", lr=args.lr, momentum=0.0, nesterov=False, weight_decay=None, seed=0))


def _gradient_check(prog, feeds):
    from .gradcheck import check_gradients

    started = time.perf_counter()
    report = check_gradients(prog, feeds, raise_on_failure=False)
    verdict = "passed" if report.ok else "FAILED"
    print(f"gradient check {verdict}: {len(report.rows)} comparisons with central differences, "
          f"{len(report.failures)} failed ({time.perf_counter() - started:.2f} s)")
    return report


def _compile(args: argparse.Namespace) -> int:
    graph, _ = resolve(args.target, args.variant, args.limits)
    prog = compile(graph, wrt=args.wrt)
    out = Path(args.out) if args.out else out_folder(args.target)
    out.mkdir(parents=True, exist_ok=True)
    for name, stage in prog.stages.items():
        _say(f"{name:<16} {stage.number_of_nodes():>5} nodes")
    _say(f"levels: {len(prog.levels)}; outputs: {', '.join(prog.outputs)}; wrt: {', '.join(prog.wrt) or '-'}")
    _say(f"generated code -> {prog.save(out / 'model_gen.py')}")
    paths = _try("drawings", lambda: _render(prog, out, args.format))
    if paths:
        _say(f"{len(paths)} drawings -> {out}")
    return 0


def _code(args: argparse.Namespace) -> int:
    graph, _ = resolve(args.target, args.variant, args.limits)
    prog = compile(graph)
    text = printable(prog.backward_source if args.backward else prog.forward_source)
    print(highlight(text) if sys.stdout.isatty() else text)
    return 0


def highlight(source: str) -> str:
    """ANSI colours for a terminal: pygments when it is installed, else comments and keywords."""
    try:
        from pygments import highlight as pyg
        from pygments.formatters import TerminalFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        source = re.sub(r"(#.*)$", "\033[2m\\1\033[0m", source, flags=re.M)
        return re.sub(r"\b(def|return|import|from)\b", "\033[1m\\1\033[0m", source)
    return pyg(source, PythonLexer(), TerminalFormatter()).rstrip("\n")


def _render_cmd(args: argparse.Namespace) -> int:
    graph, feeds = resolve(args.target, args.variant, args.limits)
    prog = compile(graph)
    unknown = [s for s in args.stage or [] if s not in prog.stages]
    if unknown:
        raise GraphcError(f"no stage {unknown[0]!r}; the stages are {', '.join(prog.stages)}")
    out = Path(args.out) if args.out else out_folder(args.target)
    paths = _render(prog, out, args.format, feeds=feeds if args.values else None, stages=args.stage)
    for path in paths:
        _say(str(path))
    return 0


def _explore(args: argparse.Namespace) -> int:
    graph, feeds = resolve(args.target, args.variant, args.limits)
    prog = compile(graph)
    out = Path(args.out) if args.out else out_folder(args.target) / "explore.html"
    steps = args.steps if prog.has_gradient else None
    _say(f"{prog.explore(out, feeds=feeds, train=steps, lr=args.lr)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    graph, feeds = resolve(args.target, args.variant, args.limits)
    prog = compile(graph)
    report = _gradient_check(prog, feeds)
    if not report.ok:
        _say(report.table(report.failures))
        return 1
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from . import zoo

    width = max(map(len, zoo.NAMES))
    for name in zoo.NAMES:
        print(f"{name:<{width}}  {zoo.summary(name)}")
    return 0


# ----------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="graphc", description="graphc, a symbolic computational-graph compiler for neural networks.",
        epilog="A TARGET is a graph file (gc.save) or a zoo name; `graphc zoo` lists the names.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="compile, draw, check and train the two-moons classifier",
                               description="Compile the zoo's two-moons classifier; write its stage drawings, "
                               "generated module and HTML report into --out; check its gradients; train it by SGD.")
    demo.add_argument("--out", default="graphc-out", help="output directory (default: graphc-out)")
    demo.add_argument("--epochs", type=positive_int, default=60, help="SGD epochs (default: 60)")
    demo.add_argument("--lr", type=float, default=0.3, help="SGD step size eta (default: 0.3)")
    demo.add_argument("--batch", type=positive_int, default=20, help="minibatch size (default: 20)")
    demo.add_argument("--data", choices=["moons", "digits"], default="moons",
                      help="moons: the two-moons classifier (default); digits: train the digits MLP on the "
                      "shipped UCI digits and report its held-out accuracy")
    demo.set_defaults(run=_demo)

    comp = commands.add_parser("compile", help="compile a graph; write its code and stage drawings",
                               description="Compile TARGET; write model_gen.py and one drawing per stage.")
    comp.add_argument("target", metavar="TARGET")
    comp.add_argument("--wrt", nargs="+", metavar="PARAM", help="params to differentiate for (default: all)")
    comp.add_argument("--out", help="output directory (default: graphc-out/<file or zoo name>)")
    comp.add_argument("--format", default="svg", help="drawing format: svg, png, pdf or dot (default: svg)")
    _limit_option(comp)
    comp.set_defaults(run=_compile)

    code = commands.add_parser("code", help="print the generated code",
                               description="Print TARGET's generated forward code (or its backward code).")
    code.add_argument("target", metavar="TARGET")
    code.add_argument("--backward", action="store_true", help="print the training forward and backward code")
    _limit_option(code)
    code.set_defaults(run=_code)

    render = commands.add_parser("render", help="draw compiler stages",
                                 description="Draw TARGET's compiler stages, one file each.")
    render.add_argument("target", metavar="TARGET")
    render.add_argument("--stage", action="append", help="a stage to draw (repeatable; default: all)")
    render.add_argument("--format", default="svg", help="svg, png, pdf or dot (default: svg)")
    render.add_argument("--out", help="output directory (default: graphc-out/<file or zoo name>)")
    render.add_argument("--values", action="store_true",
                        help="draw values and gradients for the default feeds (files NN-stage-values.FORMAT)")
    _limit_option(render)
    render.set_defaults(run=_render_cmd)

    explore = commands.add_parser("explore", help="write the explorer: every stage and training in one HTML page",
                                  description="Write one self-contained HTML page to step through TARGET's stages "
                                  "and replay --steps full-batch SGD steps on its default feeds.")
    explore.add_argument("target", metavar="TARGET")
    explore.add_argument("--out", help="the page (default: graphc-out/<file or zoo name>/explore.html)")
    explore.add_argument("--steps", type=non_negative_int, default=50, help="SGD steps to replay (default: 50)")
    explore.add_argument("--lr", type=float, default=0.1, help="SGD step size (default: 0.1)")
    _limit_option(explore)
    explore.set_defaults(run=_explore)

    check = commands.add_parser("check", help="check gradients against central differences",
                                description="Compare TARGET's compiled gradients with numeric ones on its "
                                "default feeds (zoo) or seeded random feeds (file). Exit status 1 on a mismatch.")
    check.add_argument("target", metavar="TARGET")
    _limit_option(check)
    check.set_defaults(run=_check)

    for command in (comp, code, render, explore, check):
        command.add_argument("--variant", action="append", default=[], metavar="KEY[=VALUE]",
                             help="a zoo graph's setting (repeatable): --variant dead_output, --variant depth=40")
    train_command.add_parser(commands)

    listing = commands.add_parser("zoo", help="list the built-in graphs", description="List the built-in graphs.")
    listing.set_defaults(run=_zoo)
    return top


def _limit_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--limit", action="append", type=_limit, default=[], metavar="NAME=N", dest="limit_items",
        help=f"raise a loader limit for a file you trust (repeatable): {', '.join(LIMIT_NAMES)}; "
        "see docs/security.md")


def _limit(text: str) -> tuple[str, int]:
    name, _, value = text.partition("=")
    if name not in LIMIT_NAMES or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"expected NAME=N with N a positive integer and NAME one of {', '.join(LIMIT_NAMES)}, found {text!r}")
    return name, int(value)




def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.limits = Limits.of(dict(getattr(args, "limit_items", [])))
        return args.run(args)
    except GradientError as error:
        _say(f"graphc: gradient check failed: {_one_line(error)}", file=sys.stderr)
        return 1
    except GraphcError as error:
        _say(f"graphc: {_one_line(error)}", file=sys.stderr)
        return 2
    except ImportError as error:  # a part graphc draws with is missing
        _say(f"graphc: {_one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:
        _say(f"graphc: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
