"""differentiate: reverse mode over the graph, giving the joint forward+backward graph.

Guarantees: every forward node is kept unchanged (``phase="forward"``); every node made
here has ``phase="backward"`` (the editor's tagging context); the node holding the whole
cotangent of a value X is tagged ``grad_of = X`` and has X's shape, helper steps towards
it (a transpose, a partial sum) are not tagged; graph attribute ``grads`` maps each
``wrt`` name to the node holding its gradient (zeros of its shape when it does not reach
the output); ``seed`` is ``"scalar"`` (the output is a scalar and its cotangent is 1) or
the id of the input node holding the cotangent. Nodes are made with the IR editor
(``ops/editor.py``), never the user API.

Elementwise ops are differentiated through ``sympy.diff`` of their definition, once per
op (``ops.local_partials``): each partial becomes one ``fused`` node ``g * partial``, over
the op's own output where that is cheaper (sigmoid' = y (1 - y)): the lecture's reuse of
computation. Tensor ops use the VJP rules on their entries (``ops/tensor.py``), which
return cotangents of their operands' exact shapes. Cotangents of values used several
times are summed.

Before: ``loss = square(w * x - y)``. After, added: ``d_sub = 2 sub``,
``d_mul = d_sub``, ``d_w = d_mul * x`` with ``grads = {"w": "d_w"}``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import networkx as nx
import numpy as np
import sympy

from . import ir, shapes
from .errors import GradientError, GraphError, describe
from .ops.base import OUT, arg_symbols, const_number, freeze, local_partials, op_for
from .ops.editor import Editor, Ref
from .ops.fused import fused_partials, fused_symbols
from .ops.vjp import NO_GRADIENT as _NO_GRADIENT
from .ops.vjp import unbroadcast
from .verify import topological_order

__all__ = ["differentiate", "fused", "scalar_output"]


def fused(fn: Callable, operands: Sequence[Ref], kink: str = "") -> Ref:
    """A ``fused`` node computing ``fn(*symbols)`` elementwise over ``operands``."""
    return operands[0].editor.fused(fn, operands, kink)


def scalar_output(graph: nx.MultiDiGraph, of: str | None = None) -> str:
    """The output whose gradient is taken: ``of``, or the graph's one scalar output."""
    outputs = graph.graph[ir.OUTPUTS]
    if of is not None:
        if of not in outputs:
            raise GradientError(f"cannot take the gradient of {of!r}: it is not an output; outputs are {outputs!r}")
        shape = tuple(graph.nodes[of][ir.SHAPE])
        if shape:
            raise GradientError(
                f"output {of!r} has shape {shapes.fmt(shape)}, not a scalar: its gradient needs an explicit "
                "cotangent of that shape: value_and_grad(feeds, seed=...)"
            )
        return of
    scalars = [o for o in outputs if tuple(graph.nodes[o][ir.SHAPE]) == ()]
    if len(scalars) == 1:
        return scalars[0]
    if not scalars:
        raise GradientError(
            f"graph {graph.graph[ir.NAME]!r} has no scalar output (outputs: {outputs!r}); the gradient is taken "
            "of a scalar loss: add one with g.output('loss', gc.mse(...)), or pass an explicit cotangent "
            "with value_and_grad(feeds, seed=...)"
        )
    raise GradientError(
        f"graph {graph.graph[ir.NAME]!r} has several scalar outputs {scalars!r}; say which one with of=..."
    )


def differentiate(graph: nx.MultiDiGraph, wrt: Sequence[str] | None = None, of: str | None = None,
                  seeded: bool = False) -> nx.MultiDiGraph:
    """The joint graph of ``graph`` and the gradient of output ``of`` w.r.t. ``wrt``.

    With ``seeded``, the cotangent of ``of`` is a new input node (``d_<of>``); otherwise
    ``of`` must be a scalar and its cotangent is 1.
    """
    joint = ir.copy_graph(graph)
    wrt = list(graph.graph[ir.PARAMS] if wrt is None else wrt)
    _check_wrt(graph, wrt)
    forward_nodes = list(topological_order(joint))
    nodes = joint._node  # the node dicts themselves: a view per lookup costs, on every node
    for node in forward_nodes:
        nodes[node].setdefault(ir.PHASE, ir.FORWARD)
    if seeded:
        target = of if of is not None else graph.graph[ir.OUTPUTS][0]
        if target not in graph.graph[ir.OUTPUTS]:
            raise GradientError(f"cannot take the gradient of {target!r}: it is not an output")
    else:
        target = scalar_output(graph, of)
    editor = Editor(joint)

    needed = _needs_gradient(joint, target, wrt)
    toward: dict[str, str] = {}  # backward node -> the value whose gradient it helps compute
    cotangents: dict[str, list[str]] = {}
    with editor.tagging(phase=ir.BACKWARD):  # every node made from here on is a backward node
        if seeded:
            seed_id = ir.fresh_id(joint, f"d_{target}")
            editor.source("input", seed_id, nodes[target][ir.SHAPE], nodes[target][ir.DTYPE])
            joint.graph[ir.SEED] = seed_id
            _hold(joint, seed_id, target)
        else:
            seed_id = editor.const(1.0).id
            toward[seed_id] = target
            _hold(joint, seed_id, target)
            joint.graph[ir.SEED] = "scalar"
        cotangents[target] = [seed_id]

        totals: dict[str, str] = {}
        for node in reversed(forward_nodes):
            if node not in needed or node not in cotangents:
                continue
            total = _accumulate(editor, toward, node, cotangents.pop(node))
            totals[node] = total
            operands = ir.operands(joint, node)
            if not operands:  # an input or param: its total is all there is
                continue
            vjp = _vjp(editor, joint, node, operands)
            g = editor.ref(total)
            created = editor.created
            for k, operand in enumerate(operands):
                if operand not in needed:
                    continue
                mark = len(created)
                contribution = vjp(k, g)
                if contribution is None:
                    continue
                _toward(toward, created[mark:], operand)
                _check_cotangent(joint, contribution.id, operand, node)
                cotangents.setdefault(operand, []).append(contribution.id)

        grads = {}
        for name in wrt:
            if name not in totals:
                mark = len(editor.created)
                totals[name] = editor.add("zeros_like", [editor.ref(name)]).id
                _toward(toward, editor.created[mark:], name)
            grads[name] = totals[name]
    for value, holder in totals.items():
        _hold(joint, holder, value)
    joint.graph[ir.GRADS] = grads
    return _name_backward(joint, toward, editor.created)


def _check_wrt(graph: nx.MultiDiGraph, wrt: list[str]) -> None:
    sources = ir.sources(graph)
    known = set(sources)
    for name in wrt:
        if name not in known:
            raise GraphError(
                f"wrt names {name!r}, which is not an input or param of graph {graph.graph[ir.NAME]!r}; "
                f"choose among {sources!r}"
            )
    if len(set(wrt)) != len(wrt):
        raise GraphError(f"wrt {wrt!r} names a value twice")


def _needs_gradient(graph: nx.MultiDiGraph, target: str, wrt: list[str]) -> set[str]:
    """Nodes on some path from a wrt value to the target that no stop_gradient cuts."""
    return _reached(graph._pred, [target]) & _reached(graph._succ, wrt, lambda node: op_for(
        graph, graph._node[node][ir.OP], node).vjp is not _NO_GRADIENT)


def _reached(adjacency: dict, start: list, passes: Callable | None = None) -> set:
    """The nodes reached from ``start`` along ``adjacency`` (the predecessor or successor
    dicts), through nodes ``passes`` lets through (each start node included if it passes)."""
    reached, stack = set(), list(start)
    while stack:
        node = stack.pop()
        if node in reached or passes is not None and not passes(node):
            continue
        reached.add(node)
        stack.extend(adjacency[node])
    return reached


def _toward(toward: dict[str, str], nodes: list[str], value: str) -> None:
    for node in nodes:
        toward.setdefault(node, value)


def _hold(graph: nx.MultiDiGraph, node: str, value: str) -> None:
    """``node`` holds the whole gradient of ``value``: it is tagged ``grad_of`` (once)."""
    data = graph._node[node]
    if data.get(ir.PHASE) == ir.FORWARD:  # never: cotangents are backward values
        raise AssertionError(f"forward node {node!r} was given as the gradient of {value!r}")
    data[ir.PHASE] = ir.BACKWARD
    data.setdefault(ir.GRAD_OF, value)


def _check_cotangent(graph: nx.MultiDiGraph, cotangent: str, value: str, node: str) -> None:
    found, expected = tuple(graph._node[cotangent][ir.SHAPE]), tuple(graph._node[value][ir.SHAPE])
    if found != expected:  # a VJP rule's bug, never the user's
        raise AssertionError(f"the VJP of {node!r} gives {value!r} a cotangent of shape {found}, not {expected}")


def _accumulate(editor: Editor, toward: dict[str, str], node: str, parts: list[str]) -> str:
    """The total cotangent of ``node``: the sum of its contributions, in order."""
    if len(parts) == 1:  # most values are read once
        return parts[0]
    total = editor.ref(parts[0])
    for part in parts[1:]:
        mark = len(editor.created)
        total = total + editor.ref(part)
        _toward(toward, editor.created[mark:], node)
    return total.id


def _vjp(editor: Editor, graph: nx.MultiDiGraph, node: str, operands: list[str]) -> Callable:
    """The VJP of ``node``: ``(k, g)`` -> the contribution of cotangent ``g`` to operand
    ``k``'s (None where no gradient flows). Its op, its operands' handles and an elementwise
    op's partials are worked out once for all its operands."""
    data = graph._node[node]
    op = op_for(graph, data[ir.OP], node)
    args = [editor.ref(a) for a in operands]
    if op.elementwise:
        partials, kink, variables = _partials(graph, data, op, args)
        return lambda k, g: _elementwise_vjp(editor, node, args, _recipe(partials[k], variables), kink, k, g)
    if op.vjp is None:
        def refuse(k, g):
            raise GradientError(f"{describe(node, op.name)} has no derivative rule; it cannot be differentiated")
        return refuse
    return lambda k, g: op.vjp(editor.ref(node), args, g, k)


def _partials(graph: nx.MultiDiGraph, data: dict, op, args: list[Ref]) -> tuple:
    """An elementwise node's partials (one per operand), its kink note and the symbols they are over."""
    if ir.EXPR in data:
        expr, symbols = data[ir.EXPR]
        return fused_partials(expr, tuple(symbols)), data[ir.ATTRS].get("kink", ""), tuple(symbols)
    constants = tuple((i, const_number(graph._node[a.id][ir.ATTRS]["value"]))
                      for i, a in enumerate(args) if _is_scalar_const(graph, a.id))
    kink = f"d {op.name}: {op.kink}" if op.kink else ""
    return local_partials(op, freeze(data[ir.ATTRS]), constants), kink, _arg_symbols(len(args))


@functools.lru_cache(maxsize=4096)
def _recipe(partial: sympy.Expr, variables: tuple) -> tuple | None:
    """How a partial over ``variables`` becomes a contribution, worked out once per partial
    (a deep network's layers repeat a few): None for 0 (a DiracDelta counts as 0), else the
    positions of the operands it mentions, whether it mentions the op's own output, and the
    fused expression ``cotangent * partial`` (None for 1: the contribution is the cotangent)."""
    partial = _without_dirac(partial)
    if partial == 0:
        return None
    free = partial.free_symbols
    positions = tuple(i for i, s in enumerate(variables) if s in free)
    used = tuple(variables[i] for i in positions) + ((OUT,) if OUT in free else ())
    return positions, OUT in free, None if partial == 1 else _contribution(partial, used)


def _elementwise_vjp(editor: Editor, node: str, args: list[Ref], recipe: tuple | None, kink: str, k: int,
                     g: Ref) -> Ref | None:
    if recipe is None:
        return None
    positions, reads_output, expression = recipe
    if expression is None:
        contribution = g
    else:
        # operands of the contribution: the cotangent, then each value the partial mentions
        operands = [g] + [args[i] for i in positions] + ([editor.ref(node)] if reads_output else [])
        contribution = editor.add("fused", operands, {"kink": kink}, expr=expression)
    return unbroadcast(contribution, args[k].shape)


@functools.lru_cache(maxsize=4096)
def _contribution(partial: sympy.Expr, used: tuple) -> tuple:
    """The fused expression ``cotangent * partial`` over the operands ``a0`` (the cotangent),
    ``a1, ...`` (the values in ``used``, in order), and its symbols: what ``editor.fused``
    would build, worked out once per partial (a deep network's layers repeat a few)."""
    symbols = fused_symbols(len(used) + 1)
    expression = sympy.sympify(symbols[0] * partial.xreplace(dict(zip(used, symbols[1:]))))
    return expression, symbols


_arg_symbols = functools.cache(arg_symbols)  # the symbols x0, x1, ... of an op's definition, per arity


def _without_dirac(partial: sympy.Expr) -> sympy.Expr:
    """``partial`` with every DiracDelta set to 0.

    ``sympy.diff`` of a step (Heaviside, sign: the derivatives of relu, abs, max) is a
    DiracDelta, which no array code can compute. The step's derivative is 0 wherever it
    exists, so second derivatives through a kink follow the convention d step = 0.
    """
    if not partial.has(sympy.DiracDelta):
        return partial
    return partial.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)


def _is_scalar_const(graph, node) -> bool:
    data = graph._node[node]
    return data[ir.OP] == "const" and np.ndim(data[ir.ATTRS]["value"]) == 0


def _name_backward(joint: nx.MultiDiGraph, toward: dict[str, str], created: list[str]) -> nx.MultiDiGraph:
    """Readable ids: ``d_W1`` for W1's gradient, ``d_h`` for the node holding h's, and
    ``d_h_1``... for the steps towards it. ``created``: the nodes made, in the graph's order."""
    nodes = joint._node
    grads = joint.graph[ir.GRADS]
    finals = {node: name for name, node in grads.items() if node in toward}
    # the gradients first, then the nodes holding a value's, then the steps (each kind in
    # the graph's order): the earlier kinds take the plainer names
    ranked: tuple[list, list, list] = ([], [], [])
    for node in created:
        if node in toward and nodes[node][ir.OP] != "input":
            ranked[0 if node in finals else 1 if ir.GRAD_OF in nodes[node] else 2].append(node)
    taken = set(nodes)
    for kind in ranked:
        taken.difference_update(kind)
    mapping: dict[str, str] = {}
    tried: dict[str, int] = {}  # per stem, the suffixes already found taken (taken only grows)
    for kind in ranked:
        for node in kind:
            stem = f"d_{finals.get(node) or nodes[node].get(ir.GRAD_OF) or toward[node]}"
            k = tried.get(stem, 0)
            candidate = f"{stem}_{k}" if k else stem
            while candidate in taken:
                k += 1
                candidate = f"{stem}_{k}"
            tried[stem] = k
            taken.add(candidate)
            mapping[node] = candidate
    out = ir.relabeled(joint, mapping)  # joint is this stage's own copy: its dicts move, not copied
    out.graph[ir.GRADS] = {name: mapping.get(node, node) for name, node in grads.items()}
    return out
