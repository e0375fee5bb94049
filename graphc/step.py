"""``prog.train_step(optimizer)``: one training step, ``step(feeds) -> loss``.

A step is one generated function per (program, optimizer), ``train_step`` in
``step.source`` (printed by :mod:`graphc.step_source`): the program's generated forward
and backward passes, then ``update``, printed by the compiler from the optimizer's rule
as a graph (``step.update.graph``, see :mod:`graphc.step_graph`; its plan is
``step.plan``) whose inputs are the params, their gradients, the optimizer's state, ``t``
and the settings, and whose outputs are the new params and state; these are then written
into the caller's param arrays and into the state arrays, which are arguments of the
step by names of their own (``step.state`` shows them so; ``save_state``/``load_state``
keep and resume them). The loss returned is the one of the forward pass that produced
the update. The optimizer keeps its state between steps.

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

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import ir
from .differentiate import scalar_output
from .errors import FeedError, GradientError, GraphcError
from .files import replace_file
from .lower.load import load_source
from .optim import Optimizer
from .step_graph import update_graph
from .step_source import LINKED, print_step

__all__ = ["TrainStep"]


class TrainStep:
    """``step(feeds) -> loss``: forward, backward and the optimizer's update of every param,
    in one generated function (``step.source``), with the optimizer's state as its arguments
    and the update as a graph of its own (``step.update``)."""

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
        self.params = list(prog.wrt) if prog.plan.joint is not None else []
        rule = optimizer.rule
        dtype = prog.graph.nodes[self.loss][ir.DTYPE]  # the declared graph: a stage is made when first read
        declared = prog.graph.nodes
        self.update = update_graph(rule, [(name, tuple(declared[name][ir.SHAPE]), declared[name][ir.DTYPE])
                                          for name in self.params])
        printed = print_step(self.update, ir.sources(prog.graph), prog.outputs.index(self.loss), dtype)
        self.source = printed.source
        self.plan = printed.plan  # the update function's plan, over the update graph
        # identifier -> (param, state name): how the step's arguments name the optimizer's state
        self.state_names = {ident: (param, role) for ident, param, role in printed.state}
        module = load_source(self.source, f"{prog.name} {rule.name}")
        for name in LINKED:  # the program's own generated passes, which train_step calls
            if hasattr(prog.module, name):
                setattr(module, name, getattr(prog.module, name))
        self._step, self._update = module.train_step, module.update

    def __call__(self, feeds: Mapping) -> float:
        _check_updatable(self._dtypes, feeds)
        t = self._next_count()
        if t is None:  # some params were stepped elsewhere: each keeps its own count
            outputs, grads = self.prog.value_and_grad(feeds)
            self.optimizer.update_all(feeds, {name: grads[name] for name in self.params})
            return float(outputs[self.loss])
        arrays = self.prog._check_feeds(feeds)
        state = [array for name in self.params for array in self.optimizer._state_of(name, feeds[name])]
        loss = self._step(*arrays, *state, t, *self._settings())
        self._counted(t)
        return float(loss)

    def apply(self, params: Mapping, grads: Mapping) -> None:
        """The optimizer's update of every param in ``params`` (in place) from ``grads``
        computed elsewhere (e.g. summed over the shards of a batch)."""
        _check_updatable(self._dtypes, params)
        t = self._next_count()
        if t is None:
            self.optimizer.update_all(params, {name: grads[name] for name in self.params})
            return
        arguments: list = []
        buffers: list = []  # in the order update returns their new values: each param, then its state
        for name in self.params:
            param = params[name]
            state = self.optimizer._state_of(name, param)
            arguments += (param, grads[name], *state)
            buffers += (param, *state)
        news = self._update(*arguments, t, *self._settings())
        for buffer, new in zip(buffers, news):  # every new value is computed: now into the arrays
            buffer[...] = new
        self._counted(t)

    # -- the state ---------------------------------------------------------------------------
    @property
    def t(self) -> int:
        """The steps every param has taken (the ``t`` the last step ran with)."""
        counts = {self.optimizer.steps.get(name, 0) for name in self.params}
        if len(counts) > 1:
            raise GraphcError(f"the params of {self.prog.name!r} were stepped apart: their step counts differ "
                              f"({dict((n, self.optimizer.steps.get(n, 0)) for n in self.params)})")
        return counts.pop() if counts else 0

    @property
    def state(self) -> dict[str, np.ndarray | int]:
        """The values the next step reads, by the names ``step.source`` gives them
        (``m_W1``...), and ``t``: the optimizer's own arrays (a param that has not been
        stepped yet has none)."""
        out: dict[str, np.ndarray | int] = {}
        for ident, (param, role) in self.state_names.items():
            if param in self.optimizer.state:
                out[ident] = self.optimizer.state[param][role]
        out["t"] = self.t
        return out

    def save_state(self, path) -> Path:
        """Write :attr:`state` (arrays and ``t``) to an ``.npz`` file; :meth:`load_state` resumes it."""
        state = self.state
        missing = [ident for ident in self.state_names if ident not in state]
        if missing:
            raise GraphcError(f"no optimizer state for {self.state_names[missing[0]][0]!r} yet: take a step first")
        buffer = io.BytesIO()
        np.savez(buffer, **{k: np.asarray(v) for k, v in state.items()})
        return replace_file(path, buffer.getvalue())

    def load_state(self, path) -> None:
        """Resume from a file :meth:`save_state` wrote: every state array, checked against
        its param's declared shape and dtype, and the step count."""
        try:
            with np.load(Path(path), allow_pickle=False) as stored:
                stored = {k: stored[k] for k in stored.files}
        except (ValueError, zipfile.BadZipFile, EOFError, OSError):
            raise FeedError(f"{path}: not a step state file (a numpy .npz that save_state wrote)") from None
        expected = [*self.state_names, "t"]
        unknown, missing = sorted(set(stored) - set(expected)), [k for k in expected if k not in stored]
        if unknown or missing:
            raise FeedError(f"{path}: an optimizer state for this step holds {expected}; "
                            f"{'missing ' + repr(missing) if missing else 'unknown ' + repr(unknown)}")
        t = stored["t"]
        if t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
            raise FeedError(f"{path}: 't' must be a step count (an integer 0 or more), found {t!r}")
        arrays = {}
        for ident, (param, role) in self.state_names.items():
            value, data = stored[ident], self.prog.graph.nodes[param]
            shape, dtype = tuple(int(d) for d in data[ir.SHAPE]), np.dtype(data[ir.DTYPE])
            if value.shape != shape or value.dtype != dtype:
                raise FeedError(f"{path}: {ident!r} (state {role!r} of param {param!r}) must be {dtype} of shape "
                                f"{shape}, found {value.dtype} of shape {value.shape}")
            arrays.setdefault(param, {})[role] = np.array(value)
        for param in self.params:
            self.optimizer.state[param] = {role: arrays[param][role] for role in self.optimizer.rule.state}
            self.optimizer.steps[param] = int(t)

    # -- helpers -----------------------------------------------------------------------------
    def _next_count(self) -> int | None:
        """The step count of this step, when every param shares one (always, unless the
        optimizer also updated some of them elsewhere)."""
        counts = {self.optimizer.steps.get(name, 0) for name in self.params}
        if len(counts) > 1:
            return None
        return counts.pop() + 1 if counts else 1

    def _counted(self, t: int) -> None:
        for name in self.params:
            self.optimizer.steps[name] = t

    def _settings(self) -> tuple[float, ...]:
        return tuple(self.optimizer.settings[h] for h in self.optimizer.rule.hyper)

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
