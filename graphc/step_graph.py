"""An optimizer's update as a graph: the state and the settings are its inputs, every
assignment of the rule is an elementwise node, and the new param and state values are its
outputs.

For every param ``p`` of a program the graph holds ``p`` (a param), its gradient (an
input: what the program's ``backward_pass`` returns), one input per state array of the
rule (``m_p``, ``v_p``; zeros at the first step), and one input per scalar: the step
count ``t`` and every setting. Each assignment ``target <- expr`` of the rule becomes a
``fused`` node whose expression is the rule's, over the nodes holding the current value
of each symbol; the scalar assignments (Adam's bias corrections) are nodes of their own,
shared by every param. The graph is planned and printed by the compiler's own schedule
and emitter, like the program's passes.

>>> import graphc as gc
>>> update = update_graph(gc.optim.Adam(lr=0.1).rule, [("w", (2,), "float64")])
>>> update.state, update.scalars
((('m_w', 'w', 'm'), ('v_w', 'w', 'v')), ('t', 'lr', 'beta1', 'beta2', 'eps'))
>>> update.updated
(('w', 'new_w'), ('m_w', 'new_m_w'), ('v_w', 'new_v_w'))
>>> update.graph.nodes["new_m_w"]["expr"][0]
beta1*m + g*(1 - beta1)
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import sympy

from . import ir
from .update_rule import G, P, Rule, T

__all__ = ["UpdateGraph", "update_graph"]


@dataclass(frozen=True)
class UpdateGraph:
    """The update graph of one rule over some params, and what each of its nodes is."""

    graph: nx.MultiDiGraph
    params: tuple[str, ...]  # the param nodes, in order
    grads: tuple[str, ...]  # the gradient input of each param, in the same order
    state: tuple[tuple[str, str, str], ...]  # (input node, param, state name), in order
    scalars: tuple[str, ...]  # the input nodes of t and of the settings, in rule order
    scalar_names: tuple[str, ...]  # what each of them is: "t", then the settings' names
    updated: tuple[tuple[str, str], ...]  # (param or state node, the node of its new value)

    @property
    def arguments(self) -> tuple[str, ...]:
        """The graph's inputs in argument order: per param its node, gradient and state, then the scalars."""
        state = {param: [node for node, p, _ in self.state if p == param] for param in self.params}
        per_param = [[p, g, *state[p]] for p, g in zip(self.params, self.grads)]
        return tuple(node for group in per_param for node in group) + self.scalars


def update_graph(rule: Rule, params: list[tuple[str, tuple, str]]) -> UpdateGraph:
    """The update graph of ``rule`` for ``params``, each ``(name, shape, dtype)``."""
    graph = ir.new_graph(rule.name)
    for name, shape, dtype in params:
        ir.add_op(graph, name, "param", [], shape=shape, dtype=dtype)
        graph.graph[ir.PARAMS].append(name)
    grads = tuple(_input(graph, f"d_{name}", shape, dtype) for name, shape, dtype in params)
    state = tuple((_input(graph, f"{role}_{name}", shape, dtype), name, role)
                  for name, shape, dtype in params for role in rule.state)
    scalars = tuple(_input(graph, symbol, (), "float64") for symbol in ("t", *rule.hyper))
    shared = {T: scalars[0], **{sympy.Symbol(h): node for h, node in zip(rule.hyper, scalars[1:])}}
    for target, expr in rule.scalar_steps():
        shared[sympy.Symbol(target)] = _assign(graph, target, expr, shared, (), "float64")
    local = {target for target, _ in rule.scalar_steps()}
    updated = []
    for (name, shape, dtype), grad in zip(params, grads):
        current = {**shared, P: name, G: grad}
        current.update({sympy.Symbol(role): node for node, param, role in state if param == name})
        for target, expr in rule.steps:
            if target in local:
                continue
            stem = "new_" + (name if target == "p" else f"{target}_{name}")
            current[sympy.Symbol(target)] = _assign(graph, stem, expr, current, shape, dtype)
        updated.append((name, current[P]))
        updated += [(node, current[sympy.Symbol(role)]) for node, param, role in state if param == name]
    graph.graph[ir.OUTPUTS] = [new for _, new in updated]
    return UpdateGraph(graph, tuple(name for name, _, _ in params), grads, state, scalars, ("t", *rule.hyper),
                       tuple(updated))


def _input(graph: nx.MultiDiGraph, stem: str, shape: tuple, dtype: str) -> str:
    node = ir.fresh_id(graph, stem)
    ir.add_op(graph, node, "input", [], shape=shape, dtype=dtype)
    graph.graph[ir.INPUTS].append(node)
    return node


def _assign(graph: nx.MultiDiGraph, stem: str, expr: sympy.Expr, current: dict, shape: tuple, dtype: str) -> str:
    """A fused node computing ``expr`` over the nodes that hold its symbols' values now."""
    symbols = tuple(sorted(expr.free_symbols, key=lambda s: s.name))  # sorted: the same graph every run
    node = ir.fresh_id(graph, stem)
    ir.add_op(graph, node, "fused", [current[s] for s in symbols], attrs={"kink": ""}, shape=shape, dtype=dtype,
              **{ir.EXPR: (expr, symbols), ir.FUSED_SIZE: 1})
    return node
