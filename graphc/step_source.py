"""The printed training step: forward, backward and an optimizer's update in one function.

``train_step(<sources>, <state>, t, <settings>)`` runs the program's generated
``train_forward`` and ``backward_pass`` (seeded with 1: the loss is a scalar), then
``update``, the function the compiler's schedule and emitter print from the rule's update
graph (:mod:`graphc.step_graph`), which returns the new value of every param and state
array; only then are they written into the params and the state, so an error (a
floating-point error under ``numpy.errstate(all="raise")``) leaves every one as it was,
as ``sgd_step`` does. The state arrays are arguments with names of their own (``m_W1``,
``v_W1``: the rule's state name and the param's). It returns the loss of that forward pass.

>>> import graphc as gc
>>> from graphc.step_graph import update_graph
>>> update = update_graph(gc.optim.Adam(lr=0.1).rule, [("w", (2,), "float64")])
>>> printed = print_step(update, ["x", "w"], loss=0, dtype="float64")
>>> print(printed.source.split("\\n):")[0].split("\\n\\n\\n")[1])
def train_step(
    x, w,
    m_w, v_w,
    t, lr, beta1, beta2, eps,
>>> printed.state
(('m_w', 'w', 'm'), ('v_w', 'w', 'v'))
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from . import ir, schedule
from .lower.emit import Module, print_function
from .lower.naming import RESERVED, Namespace
from .step_graph import UpdateGraph

__all__ = ["StepSource", "print_step", "LINKED"]

# the program's generated functions the step calls: put into the step module's namespace
LINKED = ("train_forward", "backward_pass", "forward_pass")


@dataclass(frozen=True)
class StepSource:
    source: str  # the module: train_step, then update
    state: tuple[tuple[str, str, str], ...]  # (identifier, param, state name), in argument order
    plan: schedule.FunctionPlan  # update's plan, over the update graph's nodes


def print_step(update: UpdateGraph, sources: list[str], loss: int, dtype: str) -> StepSource:
    """The step module for a program whose ``train_forward`` takes ``sources`` (inputs and
    params, in order) and whose ``backward_pass`` returns the gradients of ``update.params``
    (in order; none: the program learns nothing, and the step runs ``forward_pass``), of the
    scalar output at index ``loss`` of the outputs, of dtype ``dtype``."""
    graph = update.graph
    names = Namespace(RESERVED | {"train_step", "update", *LINKED, *update.scalar_names})
    for node, name in zip(update.scalars, update.scalar_names):  # t and the settings by their own names
        names.bind(node, name)
    learned = set(update.params)
    # the update graph's nodes first: a param's node id is its name, so both functions share it
    for node in update.arguments:
        names.name(node)
    arguments = [names.name(s) if s in learned else names.name(("input", s), hint=s) for s in sources]
    state = [(names.name(node), param, role) for node, param, role in update.state]
    groups = [", ".join(ident for ident, p, _ in state if p == param) for param in update.params]
    scalars = [names.name(node) for node in update.scalars]
    signature = "".join(f"    {group},\n" for group in [", ".join(arguments), *groups, ", ".join(scalars)] if group)
    fed = ", ".join(arguments)
    outputs = [new for _, new in update.updated]
    needed = set(outputs).union(*(nx.ancestors(graph, new) for new in outputs))  # no params: no bias corrections
    levels = [[n for n in level if n in needed] for level in schedule.levels(graph)]
    plan = schedule.plan_function(
        graph, "update", list(update.arguments), levels, outputs,
        doc="The new value of every param and of its state (the update graph's outputs), in order.")
    module = Module(graph, namespace=names)
    update_text = print_function(module, plan)
    if update.params:
        grads = [names.name(g) for g in update.grads]
        per_param = len(update.arguments) - len(update.scalars)
        calls = _groups([names.name(a) for a in plan.args[:per_param]], len(update.params)) + [", ".join(scalars)]
        news = _groups([names.name(new) for _, new in update.updated], len(update.params))
        body = [f"outputs, saved = train_forward({fed})",
                f"{_targets(grads)} = backward_pass(saved, numpy.{dtype}(1.0))",
                "del saved  # emptied by backward_pass",
                "(", *[f"    {group}," for group in news], ") = update(", *[f"    {group}," for group in calls], ")",
                "# every new value is computed: now into the params and the state"]
        body += [f"{names.name(node)}[...] = {names.name(new)}" for node, new in update.updated]
    else:  # nothing to learn: the forward pass alone
        body = [f"outputs = forward_pass({fed})"]
    body.append(f"return outputs[{loss}]")
    doc = f"Forward, backward, then the update ({graph.graph[ir.NAME]}) into every param and its state; the loss."
    step = [f"def train_step(\n{signature}):", f'    """{doc}"""'] + [f"    {line}" for line in body]
    constants = [f"{name} = {value}" for name, value in module.constants.items()]
    header = ["import numpy", "", "", *constants, *([""] if constants else [])]
    return StepSource("\n".join(header + step) + "\n\n\n" + update_text, tuple(state), plan)


def _groups(names: list[str], count: int) -> list[str]:
    """``names`` cut into ``count`` equal groups (one per param), each written ``a, b, c``."""
    size = len(names) // count
    return [", ".join(names[k:k + size]) for k in range(0, len(names), size)]


def _targets(names: list[str]) -> str:
    """The left side of an assignment unpacking ``names`` (a tuple of one needs its comma)."""
    return ", ".join(names) + ("," if len(names) == 1 else "")
