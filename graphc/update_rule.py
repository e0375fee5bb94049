"""An optimizer's update rule as data, and its printing as in-place numpy.

A :class:`Rule` names the per-param state arrays and the scalar settings, and holds the
update as ordered elementwise sympy assignments over the param ``p``, its gradient ``g``,
the step count ``t``, the state and the settings. graphc's numpy printer writes it as
one function for one param (:meth:`Rule.source`), updating the param and the state in
place; a training step prints it for all of a program's params from its update graph
(:mod:`graphc.step_graph`).

>>> import sympy
>>> p, g, lr = sympy.symbols("p g lr")
>>> lines = Rule("sgd_update", "Plain SGD.", (), ("lr",), (("p", p - lr * g),)).source().splitlines()
>>> print(lines[3]); print(lines[-1])
def sgd_update(p, g, t, lr):
    p -= g*lr
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .lower.printer import print_expr

__all__ = ["Rule", "P", "G", "T"]

P, G, T = sympy.Symbol("p"), sympy.Symbol("g"), sympy.Symbol("t")


@dataclass(frozen=True)
class Rule:
    """An update rule as data.

    ``state``: names of the per-param arrays (zeros at the start, the param's shape), kept
    between steps and updated in place; ``hyper``: names of the scalar settings, passed as
    arguments; ``steps``: ordered assignments ``(target, expression)`` over the symbols
    ``p``, ``g``, ``t``, the state and the settings. ``p`` and the state are updated in
    place; any other target (``g``) is a local value, rebound, never written into (a
    gradient may share memory with a feed).
    """

    name: str
    doc: str
    state: tuple[str, ...]
    hyper: tuple[str, ...]
    steps: tuple[tuple[str, sympy.Expr], ...]

    @property
    def arguments(self) -> tuple[str, ...]:
        return ("p", "g", *self.state, "t", *self.hyper)

    def source(self) -> str:
        """The rule as a module of one numpy function, ``<name>(p, g, *state, t, *hyper)``."""
        lines = ["import numpy", "", "", f"def {self.name}({', '.join(self.arguments)}):",
                 f'    """{self.doc}"""']
        persistent = {"p", *self.state}
        for target, expr in self.steps:
            lines += [f"    {s}" for s in _statements(target, expr, target in persistent)]
        return "\n".join(lines) + "\n"

    def scalar_steps(self) -> list[tuple[str, sympy.Expr]]:
        """The local steps that read settings and ``t`` only (the same for every param)."""
        known = {sympy.Symbol(h) for h in self.hyper} | {T}
        out = []
        for target, expr in self.steps:
            if target not in ("p", *self.state) and expr.free_symbols <= known:
                out.append((target, expr))
                known.add(sympy.Symbol(target))
        return out


def _statements(target: str, expr: sympy.Expr, in_place: bool) -> list[str]:
    """numpy statements that give ``target`` the value of ``expr``.

    In place, as an expert writes it: ``x <- c x + r`` becomes ``x *= c`` then ``x += r``
    (or ``x -= -r``), ``x <- c x`` becomes ``x *= c``; anything else ``x[...] = expr``.
    Every right-hand side is printed by graphc's numpy printer; a comment gives the
    rule when it takes two statements.
    """
    if not in_place:
        return [f"{target} = {print_expr(expr)}"]
    x = sympy.Symbol(target)
    if expr.is_Mul:
        scale, rest = expr.as_independent(x, as_Add=False)
        if rest == x:
            return [f"{target} *= {print_expr(scale)}"]
    if expr.is_Add:
        free, dependent = expr.as_independent(x, as_Add=True)
        scale, rest = dependent.as_independent(x, as_Add=False)
        if rest == x:
            out = [] if scale == 1 else [f"{target} *= {print_expr(scale)}"]
            if free.could_extract_minus_sign():
                out.append(f"{target} -= {print_expr(-free)}")
            else:
                out.append(f"{target} += {print_expr(free)}")
            if len(out) == 2:
                out[-1] += f"  # {target} <- {expr}"
            return out
    return [f"{target}[...] = {print_expr(expr)}"]
