"""``gc.train``: minibatch epochs with seeded shuffling, an optimizer, a history.

Each epoch shuffles the rows of the training data (one seeded generator for the whole
run, so the same seed gives the same batches, the same weights and the same history),
cuts them into batches of ``batch_size`` (the last one may be smaller) and runs one
``prog.train_step(optimizer)`` per batch: the param arrays are updated in place.

The history is a dict (with attribute access), one entry per epoch in each list:
``loss`` (the mean training loss over the epoch's batches, weighted by their rows: the
mean over the epoch's examples when the loss is a mean over rows) and, when test data
are given, ``test_loss`` and ``test_accuracy`` (after the epoch; the accuracy when the
graph has a prediction output besides the loss and one input that output does not read,
the labels).

>>> import graphc as gc
>>> graph, feeds = gc.zoo.blobs()
>>> prog = gc.compile(graph)
>>> params = {name: feeds[name] for name in graph.params}
>>> history = gc.train(prog, params, {"x": feeds["x"], "y": feeds["y"]}, epochs=5, batch_size=30,
...                    optimizer=gc.optim.Adam(lr=0.05), seed=0)
>>> len(history.loss), history.loss[-1] < history.loss[0]
(5, True)
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import sympy

from . import ir
from .datasets import one_hot
from .errors import FeedError, GraphcError, HyperparameterError
from .optim import SGD, Optimizer
from .predict import inference_graph, prediction_outputs

__all__ = ["train", "History", "accuracy", "progress_bar", "as_inputs"]


class History(dict):
    """What :func:`train` measured per epoch: ``history["loss"]`` or ``history.loss``."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def progress_bar(done: int, total: int, text: str, width: int = 30) -> str:
    """``[#########.....]  30/60  text`` as plain text.

    >>> progress_bar(15, 60, "epoch 1/3  loss 0.25", width=8)
    '[##......]  15/60  epoch 1/3  loss 0.25'
    """
    filled = int(round(width * done / total)) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>3}/{total}  {text}"


def accuracy(prediction: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows classified right.

    Several columns: the argmax of each row, against int labels of shape (N,) or one-hot
    rows. One column: a probability, thresholded at 0.5, against 0/1 labels.
    """
    prediction, labels = np.asarray(prediction), np.asarray(labels)
    if prediction.ndim == 2 and prediction.shape[1] > 1:
        target = labels if labels.ndim == 1 else labels.argmax(axis=-1)
        return float(np.mean(prediction.argmax(axis=-1) == target))
    return float(np.mean((prediction.reshape(-1) > 0.5) == (labels.reshape(-1) > 0.5)))


# ----------------------------------------------------------------------------------------
# Data: a dict by input name, or arrays in the program's input order.

def as_inputs(prog, data) -> dict[str, np.ndarray]:
    """``data`` as {input name: array of the input's dtype}.

    ``data`` is a dict keyed by input names, or a tuple of arrays in the program's input
    order (``(X, y)``). Integer class labels of shape (N,) for an input declared (N, C)
    are turned into one-hot rows; an input declared (N,) with dtype int64 takes the labels
    as they are (``softmax_cross_entropy`` accepts both).
    """
    inputs = list(prog.graph.graph[ir.INPUTS])
    if isinstance(data, Mapping):
        pairs = dict(data)
    elif isinstance(data, Sequence) and not isinstance(data, str):
        if len(data) != len(inputs):
            raise FeedError(f"data has {len(data)} arrays but program {prog.name!r} has {len(inputs)} inputs "
                            f"{inputs!r}; pass one array per input, in that order, or a dict by name")
        pairs = dict(zip(inputs, data))
    else:
        raise FeedError(f"data must be a dict of input name -> array or a tuple of arrays, found {type(data).__name__}")
    extra = [name for name in pairs if name not in inputs]
    if extra:
        raise FeedError(f"data has {extra[0]!r}, which is not an input of program {prog.name!r}; inputs: {inputs!r}")
    return {name: _as_input(prog, name, value) for name, value in pairs.items()}


def _as_input(prog, name: str, value) -> np.ndarray:
    data = prog.graph.nodes[name]
    shape, dtype = tuple(data[ir.SHAPE]), np.dtype(data[ir.DTYPE])
    array = np.asarray(value)
    if (array.dtype.kind in "iu" and dtype.kind == "f" and array.ndim == len(shape) - 1
            and len(shape) == 2 and isinstance(shape[-1], numbers.Integral)):
        if shape[-1] == 1:  # 0/1 labels for one probability column
            return array.astype(dtype)[:, None]
        try:
            return one_hot(array, int(shape[-1])).astype(dtype)
        except GraphcError as error:
            raise FeedError(f"data {name!r} (declared {shape}): {error}") from None
    if array.dtype.kind not in "biuf":
        raise FeedError(f"data {name!r} has dtype {array.dtype}, expected real numbers ({dtype})")
    return array.astype(dtype, copy=False)


def _rows(prog, inputs: dict[str, np.ndarray], what: str) -> tuple[int, list[str]]:
    """(number of rows, the inputs that are cut into batches: those whose first dim is symbolic)."""
    batched = [name for name in inputs
               if prog.graph.nodes[name][ir.SHAPE] and isinstance(prog.graph.nodes[name][ir.SHAPE][0], sympy.Symbol)]
    counts = {name: len(inputs[name]) for name in batched}
    if len(set(counts.values())) > 1:
        raise FeedError(f"{what}: the batched inputs have different numbers of rows {counts}; "
                        "every example needs one row in each")
    if not batched:
        raise FeedError(f"{what}: program {prog.name!r} has no input with a symbolic batch dim (such as 'N') "
                        "to cut into minibatches")
    rows = next(iter(counts.values()))
    if rows == 0:
        raise FeedError(f"{what}: the data have no rows")
    return rows, batched


# ----------------------------------------------------------------------------------------
# Settings.

def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise HyperparameterError(f"gc.train: {name} must be a positive integer, found {value!r}")
    return int(value)


def _seed(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise HyperparameterError(f"gc.train: seed must be a non-negative integer, found {value!r}")
    return int(value)


def _is_data_set(part) -> bool:
    """A dict of arrays, or a tuple of numpy arrays (not a nested list standing for one array)."""
    return isinstance(part, Mapping) or (isinstance(part, (tuple, list))
                                         and all(isinstance(a, np.ndarray) for a in part))


def _split(data, test):
    """(train, test): ``data`` may itself be the pair ``(train, test)``, as gc.datasets returns."""
    if test is None and isinstance(data, tuple) and len(data) == 2 and all(map(_is_data_set, data)):
        return data
    return data, test


# ----------------------------------------------------------------------------------------
# The loop.

def train(prog, params: Mapping[str, np.ndarray], data, *, epochs: int = 10, batch_size: int = 32,
          optimizer: Optimizer | None = None, seed: int = 0, test=None, progress: bool | None = None,
          on_epoch: Callable[[int, History], None] | None = None, client=None) -> History:
    """Train ``prog``'s params (``params``, name -> float array, updated in place) on ``data``.

    ``data``: the training inputs (a dict by input name, or a tuple of arrays in input
    order), or the pair ``(train, test)``; ``test`` the held-out inputs in the same form.
    ``optimizer`` defaults to ``gc.optim.SGD(lr=0.1)``. ``progress`` draws a bar on stderr
    (default: when stderr is a terminal); ``on_epoch(epoch, history)`` runs after each epoch.
    ``client``: a Dask ``distributed.Client``; each batch is then split over its workers
    and their gradients summed (data-parallel, see :mod:`graphc.distributed`).
    """
    from .pipeline import compile
    from .program import Program

    if not isinstance(prog, Program):
        prog = compile(prog)
    epochs, batch_size, seed = _count("epochs", epochs), _count("batch_size", batch_size), _seed(seed)
    optimizer = SGD(lr=0.1) if optimizer is None else optimizer
    if not isinstance(params, Mapping):
        raise FeedError(f"params must be a dict of param name -> array, found {type(params).__name__}")
    train_data, test_data = _split(data, test)
    inputs = as_inputs(prog, train_data)
    rows, batched = _rows(prog, inputs, "training data")
    evaluate = _evaluator(prog, test_data) if test_data is not None else None
    step = prog.train_step(optimizer)
    if client is not None:
        from .distributed import DataParallelStep

        parallel = DataParallelStep(prog, step, client, inputs, batched)
    rng = np.random.default_rng(seed)
    history = History(loss=[])
    show = sys.stderr.isatty() if progress is None else bool(progress)
    batches = math.ceil(rows / batch_size)
    drawn = 0.0  # when the progress bar was last drawn
    for epoch in range(1, epochs + 1):
        order = rng.permutation(rows)
        total = 0.0
        for k, start in enumerate(range(0, rows, batch_size)):
            chosen = order[start:start + batch_size]
            if client is not None:
                loss = parallel(chosen, params)
            else:
                loss = step({**inputs, **{name: inputs[name][chosen] for name in batched}, **params})
            if not math.isfinite(loss):
                raise GraphcError(f"gc.train: the loss is {loss} at epoch {epoch}, batch {k + 1}: training diverged; "
                                  f"lower the learning rate (now {optimizer.lr})")
            total += loss * len(chosen)
            if show and (k == 0 or time.monotonic() - drawn >= 0.1):  # ten redraws a second at most
                done = (epoch - 1) * batches + k + 1
                bar = progress_bar(done, epochs * batches, f"epoch {epoch}/{epochs}  loss {loss:.4f}")
                print("\r" + bar, end="", file=sys.stderr, flush=True)
                drawn = time.monotonic()
        if show:  # wipe the bar, so that what on_epoch prints starts on a clean line
            print("\r" + " " * len(bar) + "\r", end="", file=sys.stderr, flush=True)
        history["loss"].append(total / rows)
        if evaluate is not None:
            for key, value in evaluate(params).items():
                history.setdefault(key, []).append(value)
        if on_epoch is not None:
            on_epoch(epoch, history)
    return history


def _evaluator(prog, test_data) -> Callable[[Mapping], dict[str, float]]:
    """{"test_loss": ..., "test_accuracy": ...} for given params. The accuracy compares the
    first prediction output with the one input it does not read (the labels); a graph
    whose only output is the loss, or with no single such input, gets the loss alone."""
    from .differentiate import scalar_output

    inputs = as_inputs(prog, test_data)
    _rows(prog, inputs, "test data")
    loss_name = scalar_output(prog.graph, prog.of)
    try:
        predicted = prediction_outputs(prog.graph, prog.of)[0]
    except GraphcError:  # the loss is the only output: nothing to score
        predicted, labels = None, []
    else:
        needed = set(inference_graph(prog.graph, [predicted]).graph[ir.INPUTS])
        labels = [name for name in inputs if name not in needed]

    def evaluate(params: Mapping) -> dict[str, float]:
        outputs = prog.forward({**inputs, **params})
        scores = {"test_loss": float(outputs[loss_name])}
        if len(labels) == 1:
            scores["test_accuracy"] = accuracy(outputs[predicted], inputs[labels[0]])
        return scores

    return evaluate
