"""Which statements of a level run together on a pool of threads, and what each costs.

The statements of one dependency level do not read one another's values, so they may
run at the same time; numpy releases the GIL inside BLAS and inside ufunc loops over
big arrays, so two threads do run two of them at once. Handing a statement to a thread
costs tens of microseconds (36 us to submit and collect one task here), so only
statements whose estimated work is well above that are worth it: a cost model estimates
each statement's work in flop-equivalents, and a statement joins its level's group when
that estimate can reach ``MIN_WORK``. With symbolic dims (the batch ``N``) the estimate
is an expression; the generated code evaluates it when it runs and hands to the pool
only the statements whose work is big enough then (see ``graphc/lower/parallel.py``).

A statement that writes into a dying operand's buffer (it ``donates``) stays out of the
group when another statement of its level reads that buffer: run together, it could
overwrite what the other is reading. Results never depend on the threads: each statement
computes what it computes alone, into its own arrays.

>>> import graphc as gc
>>> g = gc.Graph("two"); x = g.input("x", shape=(512, 512))
>>> A = g.param("A", shape=(512, 512)); B = g.param("B", shape=(512, 512))
>>> _ = g.output("loss", gc.sum(x @ A) + gc.sum(x @ B))
>>> print(gc.compile(g, parallel=2).plan.parallel.of("forward_pass")[0])
forward_pass level 1: 'matmul' matmul | 'matmul_1' matmul
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import sympy

from . import ir, shapes
from .ops.base import definition, freeze, op_for
from .schedule import FunctionPlan, Schedule, base

__all__ = ["Group", "ParallelPlan", "plan_parallel", "work", "MIN_WORK", "MATMUL", "ELEMENTWISE", "TRANSCENDENTAL"]

# The cost model, in flop-equivalents, measured on this kind of machine with one BLAS
# thread: a matmul runs about 40 flops/ns; an add, multiply or comparison about 0.25 ns
# per element (10 flops' time), a tanh, exp or log about 2 ns (80).
MATMUL = 2  # flops per multiply-add
ELEMENTWISE = 10  # per element and arithmetic operation
TRANSCENDENTAL = 80  # per element and function call (exp, log, tanh, ...)
MIN_WORK = 4_000_000  # about 100 us: three times what handing a statement to a thread costs


@dataclass(frozen=True)
class Group:
    """Statements of one level of one function that run together."""

    function: str
    level: int
    nodes: tuple[str, ...]  # in plan order
    works: tuple[sympy.Expr, ...]  # each statement's estimated work (flop-equivalents)
    ops: tuple[str, ...] = ()

    def __str__(self) -> str:
        members = " | ".join(f"{n!r} {op}" for n, op in zip(self.nodes, self.ops))
        return f"{self.function} level {self.level}: {members}"


@dataclass(frozen=True)
class ParallelPlan:
    """The groups of every function, for a pool of ``threads`` threads."""

    threads: int
    min_work: int
    groups: tuple[Group, ...]

    def of(self, function: str) -> list[Group]:
        return [g for g in self.groups if g.function == function]

    def __str__(self) -> str:
        head = f"{self.threads} threads; a statement runs on the pool when its work reaches {self.min_work:,} flops"
        return "\n".join([head] + [f"  {g}" for g in self.groups] if self.groups else [head, "  (no level has two)"])


# -- the cost model -------------------------------------------------------------------------
def _operations(expr: sympy.Expr) -> tuple[int, int]:
    """(arithmetic operations, function calls) of an elementwise expression."""
    calls = sum(1 for part in sympy.preorder_traversal(expr)
                if isinstance(part, sympy.Function) and not isinstance(part, (sympy.Max, sympy.Min)))
    return max(1, int(sympy.count_ops(expr)) - calls), calls


def work(graph: nx.MultiDiGraph, node: str) -> sympy.Expr:
    """The estimated work of ``node``'s statement, in flop-equivalents (dims may be symbolic)."""
    data = graph.nodes[node]
    op = op_for(graph, data[ir.OP], node)
    args = ir.operands(graph, node)
    out = shapes.size(tuple(data[ir.SHAPE]))
    if data[ir.OP] == "matmul":
        a, b = (tuple(graph.nodes[x][ir.SHAPE]) for x in args)
        inner = a[-1] if a else 1
        return sympy.sympify(MATMUL * out * inner)
    if op.elementwise:
        if ir.EXPR in data:
            expr = data[ir.EXPR][0]
        else:
            expr = definition(op, freeze(data[ir.ATTRS]))(*[sympy.Symbol(f"a{k}") for k in range(len(args))])
        arithmetic, calls = _operations(expr)
        return sympy.sympify(out * (ELEMENTWISE * arithmetic + TRANSCENDENTAL * calls))
    read = sum((shapes.size(tuple(graph.nodes[a][ir.SHAPE])) for a in args), sympy.Integer(0))
    return sympy.sympify(ELEMENTWISE * (read + out))  # a reduction, a copy, a gather: one pass over the data


def _can_reach(expr: sympy.Expr, threshold: int) -> bool:
    """Whether some size of the dims makes ``expr`` reach ``threshold`` (a number decides now)."""
    return bool(expr.free_symbols) or expr >= threshold


# -- the groups -----------------------------------------------------------------------------
def _memory_read(graph: nx.MultiDiGraph, fn_step) -> set[str]:
    """The arrays a step reads: its operands and the arrays their views look into."""
    out = set(fn_step.reads)
    out |= {base(graph, r) for r in fn_step.reads}
    return out


def _writes(graph: nx.MultiDiGraph, step) -> frozenset[str]:
    """The dying operands whose buffers a step may write into: an elementwise kernel's donors
    (lowering prints every other op as an expression that writes nothing it reads)."""
    data = graph.nodes[step.node]
    return step.donates if op_for(graph, data[ir.OP], step.node).elementwise and data[ir.SHAPE] else frozenset()


def _groups(graph: nx.MultiDiGraph, fn: FunctionPlan, min_work: int) -> list[Group]:
    by_level: dict[int, list] = {}
    for step in fn.steps:
        by_level.setdefault(step.level, []).append(step)
    groups = []
    for level, steps in sorted(by_level.items()):
        if len(steps) < 2:
            continue
        reads = {s.node: _memory_read(graph, s) for s in steps}
        members = []
        for s in steps:
            if s.grad is not None:
                continue  # a param's update writes into the param: it stays in the calling thread
            others_read = set().union(*(reads[t.node] for t in steps if t is not s))
            if _writes(graph, s) & others_read:
                continue  # it overwrites a buffer another statement of the level reads
            cost = work(graph, s.node)
            if _can_reach(cost, min_work):
                members.append((s.node, cost))
        if len(members) >= 2:
            nodes = tuple(n for n, _ in members)
            groups.append(Group(fn.name, level, nodes, tuple(c for _, c in members),
                                tuple(graph.nodes[n][ir.OP] for n in nodes)))
    return groups


def plan_parallel(plan: Schedule, threads: int, min_work: int = MIN_WORK) -> ParallelPlan:
    """The groups of every function of ``plan`` for a pool of ``threads``."""
    groups = []
    for fn in plan.functions:
        graph = plan.forward if fn.name == "forward_pass" else plan.joint
        groups += _groups(graph, fn, min_work)
    return ParallelPlan(threads, min_work, tuple(groups))
