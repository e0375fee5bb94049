"""Data-parallel training on Dask: ``gc.train(prog, params, data, ..., client=client)``.

Each minibatch is cut into one shard per worker. Every worker runs the program's
generated ``train_forward`` and ``backward_pass`` on its shard (the module's source, a
string, is sent once and loaded on the worker: no graph or sympy object travels), and
returns ``(rows, rows * loss, rows * gradient)``. Those sums are added pairwise in a
tree of tasks, and the client divides by the batch's rows and applies the optimizer's
update once, in place, in the caller's arrays.

Why that is exact: for a loss that is a mean over rows of terms that each depend on one
row (``mse``, ``bce``, ``softmax_cross_entropy``, ``mean`` of a row-wise value), the
batch's loss is ``sum_k rows_k * loss_k / rows`` and so is its gradient, whatever the
shard sizes. Any other loss (a sum, a batch statistic such as ``x - mean(x, axis=0)``,
a softmax across rows) would be wrong when split, so :func:`check_mean_over_rows`
refuses it before anything runs.

Why retries are safe: a shard task is a pure function of (source, weights, data, row
indices) and the weights change only on the client after every shard's result has
arrived, so a task that is run again (a worker lost mid-step, an error retried) gives
the same numbers and nothing is applied twice.

The same call runs on a ``distributed.LocalCluster`` and on a real cluster
(``Client("tcp://scheduler:8786")``); the workers need graphc and numpy installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import sympy

from . import ir
from .differentiate import scalar_output
from .errors import FeedError, GradientError, GraphcError
from .lower.load import load_source
from .ops.tensor import normalize_axes

__all__ = ["DataParallelStep", "check_mean_over_rows", "MEAN_LOSSES", "RETRIES"]

# Loss ops that are a mean over every element of their operands' rows.
MEAN_LOSSES = frozenset({"mean", "mse", "bce", "bce_with_logits", "softmax_cross_entropy"})
# How often a failed shard task is run again before the step fails.
RETRIES = 2


def _batch_dim(shape) -> sympy.Symbol | None:
    return shape[0] if shape and isinstance(shape[0], sympy.Symbol) else None


def _refuse(name: str, op: str, why: str) -> GradientError:
    return GradientError(f"data-parallel training: node {name!r} (op {op!r}) {why}; its gradient cannot be split "
                         "across shards of the batch: write the loss as a mean over rows (one of "
                         f"{sorted(MEAN_LOSSES)}, plus terms that read no batched input), or train without client=")


def check_mean_over_rows(prog, batched: Sequence[str]) -> str:
    """The loss's name, when it is a mean over rows of per-row terms; else a GradientError.

    Nodes that read a batched input (directly or not) come in two kinds. Row-wise ones
    keep the batch dim first and never work across it (no ``axis`` naming axis 0, no
    scalar of the batch read back). Scalars are means over rows: one of
    :data:`MEAN_LOSSES` over row-wise values, or affine in such means with coefficients
    that read no batched input (``mse(p, y) + 0.01 * sum(W**2)``, ``2 * mean(...)``):
    the weighted average over shards of an affine function of the shard means is the
    same function of the batch mean.
    """
    graph = prog.graph
    loss = scalar_output(graph, prog.of)
    dims = {_batch_dim(graph.nodes[name][ir.SHAPE]) for name in batched}
    carrying = set(batched)
    for name in ir.topological_order(graph):
        operands = ir.operands(graph, name)  # in order, a value read twice listed twice
        rows = [p for p in operands if p in carrying]
        if name in carrying or not rows:
            continue
        carrying.add(name)
        data = graph.nodes[name]
        op, attrs, shape = data[ir.OP], data.get(ir.ATTRS) or {}, tuple(data[ir.SHAPE])
        scalars = [p for p in rows if tuple(graph.nodes[p][ir.SHAPE]) == ()]
        if shape == ():
            _check_mean(graph, name, op, attrs, operands, rows, scalars)
        elif scalars:
            raise _refuse(name, op, f"reads {scalars[0]!r}, a value of the whole batch, back into its rows")
        elif _batch_dim(shape) not in dims:
            raise _refuse(name, op, f"has shape {shape}: its first dim is not the batch dim, so it mixes rows")
        elif attrs.get("axis") is not None and 0 in normalize_axes(attrs["axis"], len(graph.nodes[rows[0]][ir.SHAPE])):
            raise _refuse(name, op, "works across axis 0, the rows of the batch")
    return loss


def _check_mean(graph, name, op, attrs, operands, rows, scalars) -> None:
    """A scalar that reads the batch must be a mean over rows, or affine in such means."""
    if op in MEAN_LOSSES and not scalars:
        if op == "softmax_cross_entropy" and 0 in normalize_axes(attrs.get("axis", -1),
                                                                 len(graph.nodes[rows[0]][ir.SHAPE])):
            raise _refuse(name, op, "takes its softmax across axis 0, the rows of the batch")
        return
    if len(rows) == len(scalars):  # every batch-reading operand is itself a mean over rows
        if op in ("add", "sub", "neg", "identity"):
            return
        if op == "mul" and len(rows) == 1:
            return
        if op == "div" and rows == [operands[0]]:
            return
    raise _refuse(name, op, "is a scalar of the batch that is not a mean over its rows")


# ----------------------------------------------------------------------------------------
# What runs on a worker: plain functions of plain values (strings, dicts of arrays).

_MODULES: dict[str, object] = {}


def _module(source: str):
    """The generated module for ``source``, loaded once per worker process."""
    digest = hashlib.sha256(source.encode()).hexdigest()
    if digest not in _MODULES:
        _MODULES[digest] = load_source(source, "data-parallel shard")
    return _MODULES[digest]


def shard_gradient(source: str, dtype: str, inputs: Mapping, batched: Sequence[str], rows: np.ndarray,
                   params: Mapping) -> tuple[int, float, dict[str, np.ndarray]]:
    """(rows, rows * loss, {wrt name: rows * gradient}) of one shard: a pure function."""
    module = _module(source)
    feeds = {**inputs, **{name: inputs[name][rows] for name in batched}, **params}
    outputs, saved = module.train_forward(*module._arrays(feeds))
    grads = module.backward_pass(saved, np.ones((), dtype=dtype))
    count = len(rows)
    loss = float(outputs[module.OUTPUTS.index(module.TARGET)])
    return count, count * loss, {name: count * np.asarray(g) for name, g in zip(module.GRADS, grads)}


def add_sums(a, b):
    """Two shards' sums as one: a node of the reduction tree."""
    return a[0] + b[0], a[1] + b[1], {name: a[2][name] + b[2][name] for name in a[2]}


def _tree(client, parts: list):
    """The sum of ``parts`` (futures) by pairwise additions, log2(len) deep."""
    while len(parts) > 1:
        pairs = [client.submit(add_sums, parts[k], parts[k + 1], pure=False, retries=RETRIES)
                 for k in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def shard_rows(chosen: np.ndarray, shards: int) -> list[np.ndarray]:
    """``chosen`` cut into at most ``shards`` nearly equal, non-empty, contiguous parts.

    >>> [p.tolist() for p in shard_rows(np.arange(5), 2)]
    [[0, 1, 2], [3, 4]]
    """
    return [part for part in np.array_split(chosen, min(shards, len(chosen))) if len(part)]


# ----------------------------------------------------------------------------------------
# The client's side.

def _check_client(client) -> None:
    try:
        from distributed import Client
    except ImportError:
        raise GraphcError("data-parallel training needs Dask: pip install 'graphc[dist]' "
                          "(the packages dask and distributed)") from None
    if not isinstance(client, Client):
        raise FeedError(f"client must be a distributed.Client (e.g. Client('tcp://scheduler:8786') or "
                        f"Client(LocalCluster(n_workers=2))), found {type(client).__name__}")


class DataParallelStep:
    """``step(chosen) -> loss``: the batch of rows ``chosen`` split over the client's workers.

    ``inputs`` (every input, whole) are scattered to the workers once; a step sends the
    current weights and each shard's row indices.
    """

    def __init__(self, prog, train_step, client, inputs: Mapping, batched: Sequence[str], shards: int | None = None):
        _check_client(client)
        self.loss = check_mean_over_rows(prog, batched)
        self.client = client
        self.train_step = train_step
        self.batched = list(batched)
        self.dtype = str(prog.graph.nodes[self.loss][ir.DTYPE])  # the declared graph: a stage is made when first read
        self.shards = shards or max(1, len(client.nthreads()))
        [self._source] = client.scatter([prog.source], broadcast=True, hash=False)
        [self._inputs] = client.scatter([dict(inputs)], broadcast=True, hash=False)

    def __call__(self, chosen: np.ndarray, params: Mapping) -> float:
        client = self.client
        [weights] = client.scatter([{name: params[name] for name in self.train_step.params}], broadcast=True,
                                   hash=False)
        parts = [client.submit(shard_gradient, self._source, self.dtype, self._inputs, self.batched, rows, weights,
                               pure=False, retries=RETRIES)
                 for rows in shard_rows(np.asarray(chosen), self.shards)]
        count, loss_sum, grad_sums = _tree(client, parts).result()
        grads = {name: np.asarray(g / count, dtype=params[name].dtype) for name, g in grad_sums.items()}
        self.train_step.apply(params, grads)
        return loss_sum / count
