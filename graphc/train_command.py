"""``graphc train NET --data FILE.npz --out DIR``: train a network, write its weights and history.

NET is a zoo name (its own params are the starting point, its own feeds the default data)
or a graph file (params start from seeded Glorot weights and zero vectors). ``--data`` is
``digits`` (the shipped data set, with its held-out split) or a ``.npz`` file whose arrays
are named after the graph's inputs (``x``, ``y``, or ``x_train``, ``y_train``; case does
not matter), with the held-out ones as ``x_test``, ``y_test``; for a graph of two inputs
``X_train, y_train, X_test, y_test`` stand for the first and the second input. Integer
labels of shape (N,) for an input declared (N, C) become one-hot rows.

Written into DIR: ``weights.npz`` (one array per param, by name: ``gc.load_weights``),
``history.json`` (the settings and, per epoch, ``loss``, ``test_loss``, ``test_accuracy``)
and ``explore.html`` when this graphc has the explorer (``prog.explore``).
"""

from __future__ import annotations

import argparse
import json
import re
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from .arguments import non_negative_int, positive_int
from .errors import FeedError, GradientError, GraphcError

if TYPE_CHECKING:
    import numpy as np

    from . import optim

# The compiler and what it needs are imported when the command runs: building the
# command line (``graphc --help``) needs none of them.

__all__ = ["add_parser", "run", "DEFAULT_LR", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "adam", "adamw")
MAX_DATA_BYTES = 2 * 1024**3  # a data file's arrays, unpacked: a small archive may hold gigabytes of zeros
DEFAULT_LR = {"sgd": 0.1, "adam": 0.01, "adamw": 0.01}


def add_parser(commands) -> argparse.ArgumentParser:
    """The ``train`` subcommand, on the command line's subparsers."""
    cmd = commands.add_parser(
        "train", help="train a network; write its weights and history",
        description="Train NET (a zoo name or a graph file) on --data by minibatch epochs; write "
        "DIR/weights.npz, DIR/history.json and, when the explorer is there, DIR/explore.html.")
    cmd.add_argument("net", metavar="NET", help="a zoo name (graphc zoo) or a graph file")
    cmd.add_argument("--data", help="'digits' (shipped) or FILE.npz with arrays named after the inputs "
                     "(held-out ones as <input>_test); default: a zoo network's own feeds")
    cmd.add_argument("--out", help="output directory (default: graphc-out/train/<NET's file name>)")
    cmd.add_argument("--epochs", type=positive_int, default=20, help="epochs (default: 20)")
    cmd.add_argument("--batch-size", type=positive_int, default=32, help="minibatch size (default: 32)")
    cmd.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="update rule (default: adam)")
    cmd.add_argument("--lr", type=float, help="learning rate (default: 0.1 for sgd, 0.01 for adam and adamw)")
    cmd.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default: 0)")
    cmd.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    cmd.add_argument("--weight-decay", type=float, help="weight decay (default: 0; AdamW: 0.01)")
    cmd.add_argument("--seed", type=non_negative_int, default=0,
                     help="seed of the shuffling and of a graph file's weights")
    cmd.set_defaults(run=run)
    return cmd




def make_optimizer(name: str, lr: float | None, momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float | None = None) -> optim.Optimizer:
    """The optimizer the command line names, its settings checked (HyperparameterError)."""
    from . import optim

    lr = DEFAULT_LR[name] if lr is None else lr
    decay = {} if weight_decay is None else {"weight_decay": weight_decay}
    if name == "sgd":
        return optim.SGD(lr=lr, momentum=momentum, nesterov=nesterov, **decay)
    if momentum or nesterov:
        raise GraphcError(f"--momentum and --nesterov are SGD settings; {name} has betas instead")
    return (optim.Adam if name == "adam" else optim.AdamW)(lr=lr, **decay)


# ----------------------------------------------------------------------------------------
# The network and its data.

def network(target: str, seed: int = 0):
    """(graph, starting params, default training inputs or None) for a zoo name or a file."""
    import numpy as np

    from . import zoo
    from .io import load

    path = Path(target)
    if target in zoo.NAMES and not path.is_file():
        graph, feeds = zoo.get(target)()
        params = {name: np.array(feeds[name], dtype=float) for name in graph.params}
        return graph, params, {name: feeds[name] for name in graph.inputs}
    graph = load(path)
    return graph, initial_params(graph.nx, seed), None


def initial_params(graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Glorot-uniform weights (rank 2 and more) and zero vectors, seeded per param."""
    import sympy

    from . import init, ir

    params = {}
    for k, name in enumerate(graph.graph[ir.PARAMS]):
        shape = tuple(graph.nodes[name][ir.SHAPE])
        if any(isinstance(d, sympy.Symbol) for d in shape):
            raise FeedError(f"param {name!r} has a symbolic shape {shape}; params need concrete dims to be trained")
        params[name] = init.glorot_uniform(shape, seed + k) if len(shape) >= 2 else init.zeros(shape)
    return params


def read_data(path: Path, inputs: list[str]) -> tuple[dict, dict | None]:
    """(training arrays, held-out arrays or None) from an ``.npz`` (see the module doc)."""
    import numpy as np

    try:
        with zipfile.ZipFile(path) as archive:  # before anything is decompressed
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_DATA_BYTES:
            raise FeedError(f"{path}: the arrays unpack to {unpacked} bytes, more than graphc train reads "
                            f"({MAX_DATA_BYTES}); train from Python with gc.train on arrays you load yourself")
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (ValueError, zipfile.BadZipFile, EOFError):
        # numpy's own message suggests allow_pickle=True: never for a file from elsewhere
        raise FeedError(f"{path}: not a data file (a numpy .npz of real arrays, without pickles)") from None
    parts: dict[str, dict] = {"train": {}, "test": {}}
    for key, array in arrays.items():
        base, part = _part(key)
        name = _input_named(base, inputs)
        if name is None:
            raise FeedError(
                f"{path}: array {key!r} is not named after an input of the graph ({', '.join(inputs)}); name the "
                f"arrays {', '.join(inputs)} (held-out: {', '.join(n + '_test' for n in inputs)}), or X_train, "
                "y_train, X_test, y_test for a graph of two inputs"
            )
        if name in parts[part]:
            raise FeedError(f"{path}: two arrays give the {part} data of input {name!r}")
        parts[part][name] = array
    return parts["train"], (parts["test"] or None)


def _part(key: str) -> tuple[str, str]:
    """(name, "train" or "test") of an array: ``x``, ``x_train`` and ``X_train`` train, ``x_test`` tests."""
    for suffix, part in (("_train", "train"), ("_test", "test")):
        if key.lower().endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], part
    return key, "train"


def _input_named(base: str, inputs: list[str]) -> str | None:
    """The input an array's name stands for: the same name, the same name but for case, or
    for a graph of two inputs, X and y standing for the first and the second."""
    if base in inputs:
        return base
    folded = [name for name in inputs if name.lower() == base.lower()]
    if len(folded) == 1:
        return folded[0]
    if len(inputs) == 2 and base.lower() in ("x", "y"):
        return inputs[0 if base.lower() == "x" else 1]
    return None


def _data(args, graph, default):
    if args.data is None:
        if default is None:
            raise GraphcError(f"{args.net} is a graph file: give its training data with --data FILE.npz")
        return default, None
    if args.data == "digits" and not Path(args.data).is_file():
        from . import datasets

        return datasets.digits()
    return read_data(Path(args.data), graph.inputs)


# ----------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from .differentiate import scalar_output
    from .pipeline import compile
    from .training import train
    from .weights import save_weights

    optimizer = make_optimizer(args.optimizer, args.lr, args.momentum, args.nesterov, args.weight_decay)
    graph, params, default = network(args.net, args.seed)
    try:
        scalar_output(graph.nx)
    except GradientError as error:  # not a failed check: nothing to train
        raise GraphcError(f"cannot train {args.net}: {error}") from None
    train_data, test_data = _data(args, graph, default)
    prog = compile(graph)
    out = Path(args.out) if args.out else default_out(args.net)
    out.mkdir(parents=True, exist_ok=True)
    print(f"graphc train {graph.name!r}: {optimizer!r}, {args.epochs} epochs, batches of {args.batch_size}, "
          f"seed {args.seed}")
    every = max(1, args.epochs // 10)

    def on_epoch(epoch: int, history) -> None:
        if epoch % every == 0 or epoch == args.epochs:
            line = f"  epoch {epoch:>3}  loss {history.loss[-1]:.6f}"
            if "test_accuracy" in history:
                line += f"  test loss {history.test_loss[-1]:.6f}  test accuracy {history.test_accuracy[-1]:.3f}"
            print(line, flush=True)

    started = time.perf_counter()
    history = train(prog, params, train_data, epochs=args.epochs, batch_size=args.batch_size,
                    optimizer=optimizer, seed=args.seed, test=test_data, on_epoch=on_epoch)
    seconds = time.perf_counter() - started
    done = f"trained in {seconds:.2f} s"
    if "test_accuracy" in history:
        done += f"; held-out accuracy {history.test_accuracy[-1]:.3f}"
    print(done)
    print(f"  weights -> {save_weights(out / 'weights.npz', params, prog=prog)}")
    record = {"net": graph.name, "optimizer": type(optimizer).__name__, "settings": optimizer.settings,
              "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed, **history}
    (out / "history.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"  history -> {out / 'history.json'}")
    _explore(prog, out / "explore.html", {**_first(train_data, prog), **params})
    return 0


def default_out(target: str) -> Path:
    """``graphc-out/train/`` and the target's file name, made safe: the command line's own
    text names the folder, never a graph file's contents (its name could be ``../..``).

    >>> default_out("nets/xor.json"), default_out("digits_mlp"), default_out("../..json")
    (PosixPath('graphc-out/train/xor'), PosixPath('graphc-out/train/digits_mlp'), PosixPath('graphc-out/train/graph'))
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(target).stem).strip(".") or "graph"
    return Path("graphc-out") / "train" / stem


def _first(data, prog, rows: int = 32):
    """A few training rows for the explorer page (a dict by input name)."""
    from .training import as_inputs

    inputs = as_inputs(prog, data)
    return {name: value[:rows] for name, value in inputs.items()}


def _explore(prog, path: Path, feeds: dict) -> None:
    explore = getattr(prog, "explore", None)
    if explore is None:
        print("  explore.html: skipped (this graphc has no explorer, prog.explore)")
        return
    try:
        explore(path, feeds=feeds)
    except (GraphcError, ImportError, OSError) as error:
        print(f"  explore.html: skipped ({type(error).__name__}: {' '.join(str(error).split())})")
        return
    print(f"  explorer -> {path}")
