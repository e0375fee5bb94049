"""Optimizers as data: each is a list of elementwise sympy assignments over a param, its
gradient and its state, printed once into a small numpy function that updates in place.

The rules are those PyTorch documents for ``torch.optim.SGD``, ``Adam`` and ``AdamW``
(with ``dampening=0``, ``amsgrad=False``, ``maximize=False``), so the same settings give
the same numbers. ``t`` is the step count, 1 at the first step:

- SGD: ``g <- g + wd p``; with momentum ``buf <- mu buf + g`` (``buf`` starts at 0, so
  the first step has ``buf = g`` as in PyTorch), then ``g <- g + mu buf`` (Nesterov) or
  ``g <- buf``; ``p <- p - lr g``.
- Adam: ``g <- g + wd p`` (an L2 penalty folded into the gradient); ``m <- b1 m + (1 - b1) g``;
  ``v <- b2 v + (1 - b2) g**2``; ``p <- p - lr (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``.
- AdamW: Adam without the penalty, and first the decoupled decay ``p <- p (1 - lr wd)``.

A term whose setting is zero is left out of the rule (as PyTorch skips it), so plain SGD
prints one line:

>>> import graphc as gc
>>> print(gc.optim.SGD(lr=0.1).source.splitlines()[-1])
    p -= g*lr

Hyperparameters are arguments of the printed function (not folded into it), so changing
the learning rate needs no new code. The state lives in the optimizer, per param name,
as PyTorch keeps it per param: a second ``gc.train`` with the same optimizer goes on
where the first stopped.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
import sympy

from .errors import FeedError, HyperparameterError
from .lower.load import load_source
from .update_rule import G, P, Rule, T

__all__ = ["Rule", "Optimizer", "SGD", "Adam", "AdamW", "MAX_LR", "check_lr"]

# A learning rate above this is taken for a typo (1e3 for 1e-3): every update would leave
# the region the gradient describes. Real schedules stay far below it.
MAX_LR = 10.0

# ----------------------------------------------------------------------------------------
# Checking settings.

def _real(name: str, value, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise HyperparameterError(f"{owner}: {name} must be a real number, found {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise HyperparameterError(f"{owner}: {name} must be finite, found {value}")
    return value


def check_lr(lr, owner: str = "optimizer") -> float:
    """``lr`` as a float, or a HyperparameterError when it is not in (0, MAX_LR]."""
    lr = _real("lr", lr, owner)
    if lr <= 0:
        raise HyperparameterError(f"{owner}: the learning rate lr must be positive, found {lr}; try 0.1 or 1e-3")
    if lr > MAX_LR:
        raise HyperparameterError(
            f"{owner}: the learning rate lr = {lr} is absurdly large (above {MAX_LR}); "
            "every step would overshoot: try 0.1 for SGD or 1e-3 for Adam"
        )
    return lr


def _in_unit(name: str, value, owner: str) -> float:
    """A decay factor: in [0, 1)."""
    value = _real(name, value, owner)
    if not 0.0 <= value < 1.0:
        raise HyperparameterError(f"{owner}: {name} must lie in [0, 1), found {value}")
    return value


def _non_negative(name: str, value, owner: str) -> float:
    value = _real(name, value, owner)
    if value < 0:
        raise HyperparameterError(f"{owner}: {name} must be 0 or more, found {value}")
    return value


# ----------------------------------------------------------------------------------------
# The optimizers.

class Optimizer:
    """An update rule, its settings, its compiled update and the state of every param."""

    rule: Rule
    settings: dict[str, float]

    def __init__(self, rule: Rule, settings: dict[str, float]):
        self.rule = rule
        self.settings = settings
        self.state: dict[str, dict[str, np.ndarray]] = {}  # param name -> state name -> array
        self.steps: dict[str, int] = {}  # param name -> steps taken (PyTorch's state["step"])
        self._update = getattr(load_source(self.source, rule.name), rule.name)

    @property
    def source(self) -> str:
        """The generated numpy function that applies the rule to one param."""
        return self.rule.source()

    @property
    def lr(self) -> float:
        """The learning rate; setting it (a schedule) is checked as at construction."""
        return self.settings["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.settings["lr"] = check_lr(value, type(self).__name__)

    def reset(self) -> None:
        """Forget every param's state and step count."""
        self.state.clear()
        self.steps.clear()

    def _state_of(self, name: str, param: np.ndarray) -> tuple[np.ndarray, ...]:
        """The state arrays of param ``name``, in rule order; zeros the first time."""
        state = self.state.get(name)
        if state is None:
            state = self.state[name] = {s: np.zeros_like(param) for s in self.rule.state}
        arrays = tuple(state.values())
        if arrays and arrays[0].shape != param.shape:  # all of one param's state share its shape
            raise FeedError(
                f"param {name!r} has shape {param.shape}, but the optimizer's state for it has shape "
                f"{arrays[0].shape}; use a fresh optimizer (or optimizer.reset()) for a differently shaped network"
            )
        return arrays

    def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Apply one step of the rule to ``param`` (in place), keeping its state under ``name``."""
        self.update_all({name: param}, {name: grad})

    def update_all(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """One step for every param in ``grads`` (its array in ``params``), in place."""
        settings = tuple(self.settings[h] for h in self.rule.hyper)
        for name, grad in grads.items():
            param = params[name]
            state = self._state_of(name, param)
            t = self.steps[name] = self.steps.get(name, 0) + 1
            self._update(param, grad, *state, t, *settings)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}({shown})"


def _sym(*names: str) -> list[sympy.Symbol]:
    return [sympy.Symbol(n) for n in names]


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum, Nesterov momentum and weight decay as
    ``torch.optim.SGD`` defines them (``dampening=0``)."""

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        owner = "SGD"
        settings = {"lr": check_lr(lr, owner), "momentum": _in_unit("momentum", momentum, owner),
                    "weight_decay": _non_negative("weight_decay", weight_decay, owner)}
        if not isinstance(nesterov, bool):
            raise HyperparameterError(f"SGD: nesterov must be True or False, found {nesterov!r}")
        if nesterov and settings["momentum"] == 0:
            raise HyperparameterError("SGD: Nesterov momentum needs a momentum above 0, found momentum=0")
        self.nesterov = nesterov
        lr_, mu, wd, buf = _sym("lr", "momentum", "weight_decay", "buf")  # PyTorch's momentum_buffer
        steps: list[tuple[str, sympy.Expr]] = []
        hyper = ["lr"]
        if settings["weight_decay"]:
            steps.append(("g", G + wd * P))
            hyper.append("weight_decay")
        direction = G
        if settings["momentum"]:
            steps.append(("buf", mu * buf + G))
            hyper.append("momentum")
            if nesterov:
                steps.append(("g", G + mu * buf))
            else:
                direction = buf
        steps.append(("p", P - lr_ * direction))
        rule = Rule("sgd_update", "One step of SGD (torch.optim.SGD's rule) for one param, in place.",
                    ("buf",) if settings["momentum"] else (), tuple(hyper), tuple(steps))
        super().__init__(rule, {h: settings[h] for h in ("lr", "momentum", "weight_decay")})

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", nesterov={self.nesterov})"


def _adam_rule(name: str, doc: str, settings: dict[str, float], decoupled: bool) -> Rule:
    lr, beta1, beta2, eps, wd, m, v = _sym("lr", "beta1", "beta2", "eps", "weight_decay", "m", "v")
    steps: list[tuple[str, sympy.Expr]] = []
    hyper = ["lr", "beta1", "beta2", "eps"]
    if settings["weight_decay"]:
        hyper.append("weight_decay")
        # AdamW decays the param itself, apart from the gradient; Adam adds an L2 penalty's gradient
        steps.append(("p", P * (1 - lr * wd)) if decoupled else ("g", G + wd * P))
    # p - lr m_hat / (sqrt(v_hat) + eps), with the bias corrections m_hat = m / (1 - beta1**t)
    # and v_hat = v / (1 - beta2**t) taken out as scalars first, as torch.optim.Adam computes
    # it: one division of the arrays fewer
    step_size, bias_root = _sym("step_size", "bias_root")
    steps += [
        ("m", beta1 * m + (1 - beta1) * G),
        ("v", beta2 * v + (1 - beta2) * G**2),
        ("step_size", lr / (1 - beta1**T)),
        ("bias_root", sympy.sqrt(1 - beta2**T)),
        ("p", P - step_size * m / (sympy.sqrt(v) / bias_root + eps)),
    ]
    return Rule(name, doc, ("m", "v"), tuple(hyper), tuple(steps))


def _adam_settings(owner: str, lr, betas, eps, weight_decay) -> dict[str, float]:
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise HyperparameterError(f"{owner}: betas must be a pair (beta1, beta2), found {betas!r}") from None
    eps = _real("eps", eps, owner)
    if eps <= 0:
        raise HyperparameterError(f"{owner}: eps must be positive (it keeps the step finite), found {eps}")
    return {"lr": check_lr(lr, owner), "beta1": _in_unit("beta1", beta1, owner),
            "beta2": _in_unit("beta2", beta2, owner), "eps": eps,
            "weight_decay": _non_negative("weight_decay", weight_decay, owner)}


class Adam(Optimizer):
    """Adam with bias correction, as ``torch.optim.Adam`` defines it; ``weight_decay`` adds
    ``wd * p`` to the gradient (an L2 penalty)."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        settings = _adam_settings("Adam", lr, betas, eps, weight_decay)
        doc = "One step of Adam (torch.optim.Adam's rule) for one param, in place."
        super().__init__(_adam_rule("adam_update", doc, settings, decoupled=False), settings)


class AdamW(Optimizer):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` defines it: each step
    first scales the param by ``1 - lr * weight_decay`` (default 0.01, PyTorch's)."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        settings = _adam_settings("AdamW", lr, betas, eps, weight_decay)
        doc = "One step of AdamW (torch.optim.AdamW's rule) for one param, in place."
        super().__init__(_adam_rule("adamw_update", doc, settings, decoupled=True), settings)
