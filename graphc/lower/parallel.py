"""Print a group of statements that run together (``graphc/together.py``) as tasks on a pool.

Each statement of the group becomes a small function of no arguments (it reads the
values around it by closure) that returns what it computed; one call hands them all to
``_together`` with their estimated work, which runs in the calling thread whatever is
too small to be worth a thread at this call's sizes and the rest on the module's pool::

    def _level1_0():
        h1 = x.dot(W1)  # 'h1' matmul
        return h1
    def _level1_1():
        h2 = x.dot(W2)  # 'h2' matmul
        return h2
    h1, h2 = _together((2048*N, _level1_0), (2048*N, _level1_1))

The module stays standalone: the pool is the standard library's ``ThreadPoolExecutor``.
"""

from __future__ import annotations

import ast

import sympy

__all__ = ["TOGETHER", "print_group"]

TOGETHER = '''
import concurrent.futures as _futures

THREADS = {threads}  # the pool's threads: run numpy with one BLAS thread each (threadpoolctl)
MIN_WORK = {min_work}  # flop-equivalents; a smaller statement runs in the calling thread
_POOL = _futures.ThreadPoolExecutor(THREADS, thread_name_prefix="graphc")  # threads start on first use


def _together(*tasks):
    """Run the (work, task) pairs of one level: those of work >= MIN_WORK on the pool, the
    others here meanwhile. The results, in order; each task computes alone, so they do not
    depend on the threads."""
    big = [k for k, (work, _) in enumerate(tasks) if work >= MIN_WORK]
    if len(big) < 2:
        return [task() for _, task in tasks]
    futures = {{k: _POOL.submit(tasks[k][1]) for k in big}}
    results = [None if k in futures else task() for k, (_, task) in enumerate(tasks)]
    _futures.wait(futures.values())  # every task ends before an error propagates
    for k, future in futures.items():
        results[k] = future.result()
    return results
'''


def _rebound(lines: list[str]) -> list[str]:
    """Names a task both reads from around it and assigns: they must be ``nonlocal``
    (assigned alone, a name is the task's own; read first, it is the enclosing one)."""
    tree = ast.parse("\n".join(line.strip() for line in lines))
    bound, early = set(), []
    for statement in tree.body:  # in order; within a statement the reads come first
        names = [n for n in ast.walk(statement) if isinstance(n, ast.Name)]
        # a kernel's ``a *= b`` reads a before it binds it (its Name says Store only)
        updated = {n.target.id for n in ast.walk(statement) if isinstance(n, ast.AugAssign)
                   and isinstance(n.target, ast.Name)}
        early += [n.id for n in names if (isinstance(n.ctx, ast.Load) or n.id in updated)
                  and n.id not in bound and n.id not in early]
        bound |= {n.id for n in names if not isinstance(n.ctx, ast.Load)}  # assigned or deleted
    return [name for name in early if name in bound]


def _printed_work(module, work: sympy.Expr) -> str:
    mapping = {d: sympy.Symbol(module.dim(d), positive=True) for d in work.free_symbols}
    return module.backend.expression(work.xreplace(mapping)) if mapping else str(int(work))


def print_group(module, group, steps: dict) -> list[str]:
    """The lines running ``group``'s statements together (the caller frees what they read last)."""
    lines, calls, targets = [], [], []
    for k, (node, cost) in enumerate(zip(group.nodes, group.works)):
        step = steps[node]
        body = module.statement(node, step.donates)
        target = module.ident(node)
        name = module.namespace.name(("task", group.function, group.level, k), f"_level{group.level}_{k}")
        shared = _rebound(body)
        lines.append(f"def {name}():")
        if shared:
            lines.append(f"    nonlocal {', '.join(shared)}")
        lines += [f"    {line}" for line in body] + [f"    return {target}"]
        calls.append(f"({_printed_work(module, cost)}, {name})")
        targets.append(target)
    lines.append(f"{', '.join(targets)} = _together({', '.join(calls)})")
    return lines
