"""``prog.train_step(optimizer)``: one training step, ``step(feeds) -> loss``.

A step runs the program's compiled ``value_and_grad`` (forward and backward, generated
by the pipeline), then one update function printed from the optimizer's rule for every
param in ``wrt`` (``step.source``; numpy from the rule's sympy expressions, see
:mod:`graphc.optim`), in place, in the caller's arrays. The loss returned is the one of
the forward pass that produced the update. The optimizer keeps its state between steps.

>>> import numpy as np, graphc as gc
>>> g = gc.Graph("fit"); x = g.input("x", shape=("N", 1)); y = g.input("y", shape=("N", 1))
>>> w = g.param("w", shape=(1, 1))
>>> _ = g.output("loss", gc.mse(x @ w, y))
>>> step = gc.compile(g).train_step(gc.optim.SGD(lr=0.05))
>>> feeds = {"x": np.array([[3.0]]), "y": np.array([[6.0]]), "w": np.array([[1.5]])}
>>> step(feeds), feeds["w"]                 # dL/dw = 2 (3 w - 6) 3 = -9: w <- 1.5 + 0.45
(2.25, array([[1.95]]))
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import ir
from .differentiate import scalar_output
from .errors import FeedError, GradientError, GraphcError
from .lower.load import load_source
from .optim import Optimizer

__all__ = ["TrainStep"]


class TrainStep:
    """``step(feeds) -> loss``: value_and_grad, then the optimizer's update of every param."""

    def __init__(self, prog, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise GraphcError(
                f"train_step needs a graphc optimizer (gc.optim.SGD, Adam or AdamW), found {type(optimizer).__name__}"
            )
        params = set(prog.graph.graph[ir.PARAMS])
        inputs = [name for name in prog.wrt if name not in params]
        if inputs:
            raise GradientError(
                f"program {prog.name!r} differentiates with respect to input {inputs[0]!r}; a training step "
                "updates params only: compile with wrt naming params"
            )
        self.prog = prog
        self.optimizer = optimizer
        self.loss = scalar_output(prog.graph, prog.of)
        self._dtypes = {name: np.dtype(prog.graph.nodes[name][ir.DTYPE]) for name in prog.wrt}
        self.params = list(prog.wrt)
        rule = optimizer.rule
        doc = f"One step of {type(optimizer).__name__} for every param, in place (the rule {rule.name} per param)."
        self.source, _ = rule.source_for(self.params, doc)
        self._update = load_source(self.source, f"{prog.name} {rule.name}").update

    def __call__(self, feeds: Mapping) -> float:
        _check_updatable(self._dtypes, feeds)
        outputs, grads = self.prog.value_and_grad(feeds)
        self._apply(feeds, grads)
        return float(outputs[self.loss])

    def apply(self, params: Mapping, grads: Mapping) -> None:
        """The optimizer's update of every param in ``params`` (in place) from ``grads``
        computed elsewhere (e.g. summed over the shards of a batch)."""
        _check_updatable(self._dtypes, params)
        self._apply(params, grads)

    def _apply(self, feeds: Mapping, grads: Mapping) -> None:
        """All params in one call of the generated update, when they share one step count
        (always, unless the optimizer also updated some of them elsewhere)."""
        optimizer = self.optimizer
        counts = {optimizer.steps.get(name, 0) for name in self.params}
        if len(counts) != 1:
            optimizer.update_all(feeds, {name: grads[name] for name in self.params})
            return
        t = counts.pop() + 1
        arguments: list = []
        for name in self.params:
            param = feeds[name]
            arguments += (param, grads[name], *optimizer._state_of(name, param))
        self._update(*arguments, t, *(optimizer.settings[h] for h in optimizer.rule.hyper))
        for name in self.params:
            optimizer.steps[name] = t

    def __repr__(self) -> str:
        return f"<graphc TrainStep of {self.prog.name!r} with {self.optimizer!r}>"


def _check_updatable(dtypes: dict[str, np.dtype], feeds: Mapping) -> None:
    """Every param must be a writable numpy array of its dtype: a converted copy would be
    updated instead of the caller's array."""
    if not isinstance(feeds, Mapping):
        return  # value_and_grad explains
    for name, dtype in dtypes.items():
        value = feeds.get(name)
        if type(value) is np.ndarray and value.dtype == dtype and value.flags.writeable:
            continue
        if value is None:
            continue  # value_and_grad reports the missing feed
        found = type(value).__name__ + (f" of dtype {value.dtype}" if type(value) is np.ndarray else "")
        raise FeedError(
            f"param {name!r} must be a writable {dtype} numpy array to be updated in place, found {found}; "
            f"pass numpy.array(value, dtype={dtype.name!r})"
        )
