r'''Cache-blocked regions: a long elementwise chain over big arrays, run a block of rows at a time.

Each ufunc call of a kernel is one pass over its arrays. Over a 512x4096 float64 array
(16 MiB, more than the caches) every pass streams the array from main memory and back,
so a chain of twenty ufuncs costs twenty trips to memory, however few buffers it uses.
A run of consecutive statements that are elementwise over arrays sharing one leading
dim (their rows), possibly with reductions that add up across rows (``sum`` or ``mean``
over axis 0 or over every axis), is printed instead as one loop over blocks of rows::

    for start in range(0, N, 16):  # 16 rows at a time (see graphc/lower/blocking.py)
        x_rows = x[start:start + 16]
        d_add_p_4_rows = d_add_p_4[start:start + 16]
        add_rows = add_block[:N - start]
        numpy.multiply(x_rows, a, out=add_rows)
        ...
        numpy.subtract(1, log1p_rows, out=d_add_p_4_rows)
        ...
        loss += log1p_rows.sum() / (N*4096)

Inside one block every array fits in the cache, so the whole chain makes about one pass
over memory. The statements in the loop are the statements the region prints unblocked,
over row blocks: a value of the region's rows read from before the loop is sliced (a
view, no copy) and never written into (a block of its own stays in the cache, a slice
written into goes back to memory); smaller operands (params of shape ``(k,)``, scalars)
broadcast as they are, and so does a view that broadcasts along the rows (``x.T`` of an
``(N, 1)`` x: every block reads the whole array, never its own rows of it); a value's
buffer is a block allocated once before the loop (a float buffer; others are allocated by
the kernels block by block), of which each block takes its rows, the last maybe fewer; a
kernel's own temporaries (``_k0``) are allocated as they are unblocked; a value that
leaves the region (read later, returned, saved for the backward pass) is a full array
filled block by block: allocated before the loop, its kernels then write into its slice
(``out=``; a float buffer), or the dying array from before it that the unblocked kernel
wrote into (a block of its own, copied into the slice once it is computed); a reduction
starts at zero and adds each block's part (its result differs from the unblocked sum by
rounding only, and is the same on every run: the blocks are always the same).

Which regions are blocked is a cost model (:func:`block_rows`): the numpy backend only
(the array-API libraries have no ``out=`` on every function, and torch and JAX fuse or
vectorize on their own); a statement of a parallel group stays out (it runs on the pool
as planned); and under ``blocking="auto"`` a region must make at least ``MIN_PASSES``
passes over rows at least ``MIN_ROW_BYTES`` wide, so small work (a 32-wide residual
layer, an MLP's bias and ReLU) prints as before. ``gc.compile(g, blocking=k)`` blocks
every region it can, ``k`` rows at a time (the tests force small graphs through it);
``blocking="off"`` blocks none.

>>> import graphc as gc
>>> g = gc.Graph("chain"); x = g.input("x", shape=("N", 3)); a = g.param("a", shape=(3,))
>>> _ = g.output("loss", gc.mean(gc.tanh(gc.exp(x * a))))
>>> print(gc.compile(g, blocking=2).forward_source)
def forward_pass(x, a):
    """The forward pass: the graph's outputs, in OUTPUTS order."""
    N = x.shape[0]
    # 2 rows at a time: each block's arrays stay in the cache (one pass over memory, not one per ufunc)
    loss = numpy.float64(0)  # 'loss' mean: the sum of its blocks' parts
    tanh_block = numpy.empty((2, 3), dtype=numpy.float64)  # tanh_rows of every block
    for start in range(0, N, 2):
        x_rows = x[start:start + 2]
        tanh_rows = tanh_block[:N - start]
        # tanh = numpy.tanh(numpy.exp(a*x_rows))  (in tanh_rows's buffer: 'tanh' fused)
        numpy.multiply(x_rows, a, out=tanh_rows)
        numpy.exp(tanh_rows, out=tanh_rows)
        numpy.tanh(tanh_rows, out=tanh_rows)
        loss += tanh_rows.sum() / (N*3)  # 'loss' mean
        del tanh_rows, x_rows
    del tanh_block
    return (loss,)
<BLANKLINE>
'''

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy

from .. import ir, shapes
from .. import schedule as plan
from ..errors import GraphcError
from ..ops.base import definition, freeze, op_for
from ..ops.tensor import normalize_axes

__all__ = ["CACHE_BUDGET", "MIN_PASSES", "MIN_ROW_BYTES", "Region", "block_rows", "check_blocking",
           "find_regions", "joins_passes", "may_join_passes", "print_region"]

# The cost model, measured on this machine (2 MiB L2 per core, 32 MiB L3, numpy 2.x) with
# the elementwise case of benchmarks/run.py (512x4096 float64): the hand-written step over
# blocks of 16 rows (three 512 KiB buffers) took 0.70-0.75 of its unblocked time. The
# generated value_and_grad (train_forward: about five 32 KiB-per-row buffers in a block),
# as a ratio to the unblocked hand-written step in two runs at load 0.6-1.0: 0.70-0.87 at
# 2-6 rows a block, 0.69 at 8, 0.65-0.81 at 10-32 (16 rows best in both runs). So a
# block's buffers may fill about one core's L2: 12 rows there, 21 in the forward and
# backward passes (three buffers).
CACHE_BUDGET = 2 << 20  # bytes a block's live buffers may take together
MIN_ROW_BYTES = 16 * 1024  # a narrower row: arrays of a usual batch fit the caches already
MIN_PASSES = 4  # ufunc calls over the rows; fewer save too little to pay for the loop
REDUCTIONS = ("sum", "mean")  # linear in their operand: the sum of the blocks' parts


class BlockingError(GraphcError):
    """A ``blocking=`` compile option that is none of "auto", "off" or a number of rows."""


def check_blocking(blocking: object) -> str | int:
    """``blocking`` as the lowering reads it: ``"auto"``, ``"off"`` or rows per block (>= 1)."""
    if blocking in ("auto", "off"):
        return blocking
    if isinstance(blocking, (int, np.integer)) and not isinstance(blocking, bool) and blocking >= 1:
        return int(blocking)
    raise BlockingError(f"blocking must be 'auto', 'off' or a number of rows per block >= 1, found {blocking!r}")


@dataclass(frozen=True)
class Region:
    """Consecutive steps of one function printed as one loop over blocks of rows."""

    first: int  # index of its first step in the function's steps
    stop: int  # one past its last
    rows: object  # the leading dim every row value shares (an int or a sympy expression)
    block: int  # rows per block


def _shape(graph, node) -> tuple:
    return tuple(graph.nodes[node][ir.SHAPE])


def _row_value(graph, node, rows, rank) -> bool:
    shape = _shape(graph, node)
    return len(shape) == rank and shape[0] == rows


# ops whose value is an array of its own, never another value's memory in another order: a
# block writing into a dying operand cannot change what a later block reads through a view
FRESH = ("input", "param", "matmul")


def _sliceable(graph, node) -> bool:
    """Whether a value from before a region may be read block by block: a name holding an
    array of its own (a view such as ``x[::-1]`` or a partial transpose could read rows
    that an earlier block has overwritten), or a broadcast (read-only, of a smaller value)."""
    op = ir.op_of(graph, node)
    return op in FRESH or op == "broadcast" or op_for(graph, op, node).elementwise


def _kind(module, step, rows, rank: int, inside: set, pending: set, viewed: set) -> str | None:
    """How ``step`` joins a region over ``rows``: "elementwise", "reduction", or None (it ends it).

    Each operand is decided as the kernel reads it: a row value by blocks (a slice of one
    from before the region, or the region's own block), anything else whole, every block
    (it broadcasts along the rows). A view read whole (``x.T`` of an ``(N, 1)`` x, printed
    where it is read; ``x.reshape(1, -1)``) reads the whole array it looks into, so that
    array must be one from before the loop (a value of the region is only ever a block) that
    no block writes into (a value leaving the loop may take a dying array's buffer, filled
    block by block). ``viewed`` holds the buffer names of the region's row values that views
    read whole so far; a step reading such a view adds its own.
    """
    graph, node = module.graph, step.node
    op = op_for(graph, ir.op_of(graph, node), node)
    operands = [plan.resolve(graph, a) for a in ir.operands(graph, node)]
    if any(a in pending for a in operands):  # a reduction is whole only after the loop
        return None
    views = set()
    for a in operands:
        if a in inside:  # a block of the region's own
            continue
        if _row_value(graph, a, rows, rank):  # a value from before the region: sliced by rows
            if not _sliceable(graph, a):
                return None
            continue
        shape = _shape(graph, a)
        if len(shape) > rank or (len(shape) == rank and shape[0] != 1):
            return None  # another leading dim: it does not broadcast along the rows
        for array in _looked_into(graph, a):  # a view read whole reads its arrays whole
            if array in inside or array in pending:
                return None
            if _row_value(graph, array, rows, rank):  # a region's block may take its buffer
                views.add(module.ident(array))
    if views:
        if not views.isdisjoint(module.ident(n) for n in inside):
            return None
        viewed |= views
    if viewed and module.ident(node) in viewed:  # it would write into an array read whole
        return None
    if op.elementwise and _row_value(graph, node, rows, rank):
        return "elementwise" if _rows_from_operands(graph, node, op) else None
    if ir.op_of(graph, node) in REDUCTIONS and len(operands) == 1 and _row_value(graph, operands[0], rows, rank):
        if 0 in normalize_axes(graph.nodes[node][ir.ATTRS].get("axis"), rank):
            return "reduction"
    return None


def _looked_into(graph, node) -> list[str]:
    """The arrays a view looks into, nearest first, aliases resolved (none for another value)."""
    arrays = []
    while ir.op_of(graph, node) in plan.VIEWS:
        node = plan.resolve(graph, ir.operands(graph, node)[0])
        arrays.append(node)
    return arrays


def _rows_from_operands(graph, node, op) -> bool:
    """Whether the arrays an elementwise node's expression reads give it its whole shape.

    Otherwise its kernel prints the node's full shape (``numpy.full((N, 1), 0.25)`` for an
    expression that simplified to a number, ``broadcast_to(w, (N, 4))``), which a block is not.
    """
    data = graph.nodes[node]
    if ir.EXPR in data:
        expr, symbols = data[ir.EXPR]
    else:
        lam = definition(op, freeze(data[ir.ATTRS]))
        expr, symbols = lam.expr, lam.variables
    read = [_shape(graph, a) for s, a in zip(symbols, ir.operands(graph, node))
            if s in expr.free_symbols and _shape(graph, a)]
    return bool(read) and tuple(shapes.broadcast(read)) == _shape(graph, node)


def _passes(graph, node) -> int:
    """Ufunc calls a step's kernel makes over its rows (a plain op or a reduction: one)."""
    data = graph.nodes[node]
    if ir.EXPR not in data:
        return 1
    return max(1, sum(1 for part in sympy.preorder_traversal(data[ir.EXPR][0]) if part.args))


def block_rows(module, fn, first: int, stop: int, rows, blocking) -> int | None:
    """Rows per block for ``fn.steps[first:stop]``, or None when it stays unblocked.

    The live buffers of a block are about one per buffer name in the loop (values of the
    region and slices of values from before it) plus one for a kernel's temporary; a block
    gets as many rows as keep them within ``CACHE_BUDGET``.
    """
    graph = module.graph
    steps = fn.steps[first:stop]
    nodes = [s.node for s in steps]
    inside = set(nodes)
    sliced = {plan.resolve(graph, a) for n in nodes for a in ir.operands(graph, n)} - inside
    rank = len(_shape(graph, nodes[0]))
    sliced = {a for a in sliced if _row_value(graph, a, rows, rank)}
    if not sliced:  # nothing to slice: every row value is made inside (it cannot be)
        return None
    if blocking != "auto":
        return blocking
    values = [n for n in nodes if _row_value(graph, n, rows, rank)] + sorted(sliced)
    sizes = [_row_bytes(graph, n) for n in values]
    if None in sizes:
        return None  # a symbolic width: no row size to plan with
    row_bytes = max(sizes)
    if row_bytes < MIN_ROW_BYTES or sum(_passes(graph, n) for n in nodes) < MIN_PASSES:
        return None
    buffers = len({module.ident(n) for n in values}) + 1
    block = max(1, CACHE_BUDGET // (row_bytes * buffers))
    if isinstance(rows, (int, np.integer)) or getattr(rows, "is_Integer", False):
        if int(rows) <= block:  # one block: the arrays fit the cache already
            return None
    return block


def _any_wide_row(module, steps) -> bool:
    """Whether some step or operand of ``steps`` has rows of MIN_ROW_BYTES or more: the cost
    model blocks no region without one, and asking is one look at the module's wide nodes
    (a function of a 10,000-node chain of narrow layers skips the region search, ~7 % of its
    compile; the chain has no wide node, so no function looks at its steps)."""
    wide = _wide_nodes(module)
    if not wide:
        return False
    pred = module.graph._pred
    return any(step.node in wide or not wide.isdisjoint(pred[step.node]) for step in steps)


def _wide_nodes(module) -> frozenset[str]:
    """The nodes of ``module.graph`` with rows of MIN_ROW_BYTES or more, found once per
    module (its functions print nodes of that one graph). Each shape and dtype is measured
    once: a deep chain has a few."""
    if module.wide_rows is None:
        nodes = module.graph._node
        kinds = {(tuple(data[ir.SHAPE]), data[ir.DTYPE]) for data in nodes.values()
                 if ir.SHAPE in data and ir.DTYPE in data}
        wide = {kind for kind in kinds if (_width_bytes(*kind) or 0) >= MIN_ROW_BYTES}
        module.wide_rows = frozenset(
            node for node, data in nodes.items()
            if ir.SHAPE in data and ir.DTYPE in data and (tuple(data[ir.SHAPE]), data[ir.DTYPE]) in wide
        ) if wide else frozenset()
    return module.wide_rows


def _row_bytes(graph, node) -> int | None:
    """Bytes of one row of ``node`` (its dims after the first), or None for a symbolic width."""
    return _width_bytes(_shape(graph, node), graph.nodes[node][ir.DTYPE])


def _width_bytes(shape: tuple, dtype: str) -> int | None:
    """Bytes of one row of a value of ``shape`` and ``dtype``, or None for a symbolic width."""
    width = shape[1:]
    if not all(isinstance(d, (int, np.integer)) or getattr(d, "is_Integer", False) for d in width):
        return None
    return math.prod(int(d) for d in width) * np.dtype(dtype).itemsize


def find_regions(module, fn, excluded: set) -> dict[int, Region]:
    """The blocked regions of ``fn``, by the index of their first step.

    A region starts at an elementwise step with an array result and takes every following
    step that joins it (:func:`_kind`); steps in ``excluded`` (a parallel group's) and updates never do.
    """
    blocking = module.blocking
    if blocking == "off" or module.backend.name != "numpy":
        return {}
    graph, steps, regions = module.graph, fn.steps, {}
    if blocking == "auto" and not _any_wide_row(module, steps):  # block_rows would refuse every region
        return {}
    k = 0
    while k < len(steps):
        shape = _shape(graph, steps[k].node)
        if steps[k].node in excluded or steps[k].grad is not None or not shape or shape[0] in (0, 1):
            k += 1
            continue
        rows, rank = shape[0], len(shape)
        inside: set[str] = set()
        pending: set[str] = set()
        viewed: set[str] = set()  # buffer names of row values read whole through a view
        stop = k
        # an update (backward_pass's) ends a region: it needs its whole gradient and the param's last read done
        while stop < len(steps) and steps[stop].node not in excluded and steps[stop].grad is None:
            kind = _kind(module, steps[stop], rows, rank, inside, pending, viewed)
            if kind is None or (stop == k and kind != "elementwise"):
                break
            (inside if kind == "elementwise" else pending).add(steps[stop].node)
            stop += 1
        if stop == k:
            k += 1
            continue
        block = block_rows(module, fn, k, stop, rows, blocking)
        if block is not None:
            regions[k] = Region(k, stop, rows, block)
        k = stop
    return regions


def may_join_passes(module, fn) -> bool:
    """Whether ``forward_backward`` could have a region joining the passes, asked before it is
    planned (a plan of the whole joint graph: compile time no other module pays): blocking is
    on, the backend numpy, no parallel group runs (the passes run as planned), and under
    ``"auto"`` some value of ``fn`` (train_forward) has rows wide enough to block."""
    if module.blocking == "off" or module.backend.name != "numpy" or module.groups:
        return False
    return module.blocking != "auto" or _any_wide_row(module, fn.steps)


def joins_passes(module, fn) -> bool:
    """Whether a blocked region of ``forward_backward`` (schedule.plan_forward_backward) takes steps of
    both passes: the forward region and the backward region reading its values run as one
    loop, and the forward values only that backward region reads never go out to memory."""
    for region in find_regions(module, fn, set()).values():
        if fn.steps[region.first].level < fn.forward_levels <= fn.steps[region.stop - 1].level:
            return True
    return False


def _read_later(graph, fn, region: Region) -> set[str]:
    """Values read after the region, returned, or saved: those that leave it."""
    # through aliases and inline views: a later x.T (printed where it is read) reads x
    later = {plan.base(graph, r) for step in fn.steps[region.stop:] for r in step.reads}
    later |= {plan.base(graph, r.node) for r in fn.returns}
    later |= {plan.base(graph, n) for n in fn.saved}
    return later


def print_region(module, fn, region: Region) -> list[str]:
    """The loop printing ``fn.steps[region.first:region.stop]`` block by block."""
    graph, np_ = module.graph, module.numpy
    steps = fn.steps[region.first:region.stop]
    reductions = [s.node for s in steps if ir.op_of(graph, s.node) in REDUCTIONS]
    inside = [s.node for s in steps if s.node not in reductions]
    within = set(inside)
    rank = len(_shape(graph, inside[0]))
    sliced = list(dict.fromkeys(a for s in steps for a in s.reads
                                if a not in inside and a not in reductions
                                and _row_value(graph, a, region.rows, rank)))
    full = {n: module.ident(n) for n in inside + sliced + reductions}  # the names outside the loop
    later = _read_later(graph, fn, region)
    leaving = [n for n in inside if n in later]
    start = module.namespace.name(("rows", "start"), "start")
    block = region.block
    rows = f"{start}:{start} + {block}"
    names = {n: _block_name(module, full[n]) for n in sliced}
    names.update(_block_names(module, inside, full, set(full[a] for a in sliced)))
    bound = module.dim(region.rows) if _bound(fn, region.rows) else f"{full[sliced[0]]}.shape[0]"
    lines = [f"# {block} rows at a time: each block's arrays stay in the cache (one pass over memory,"
             " not one per ufunc)"]
    # a full array from before the loop that dies in it may take a value leaving it (as the
    # unblocked kernel wrote into it); its buffer name then is the value's
    existing = {full[a] for a in sliced}
    # a fresh full array is its leaving buffer's block: the kernels write into its slice (a
    # block of its own would be copied there, one more pass over the block and over memory)
    direct = {names[n] for n in leaving if full[n] not in existing and _writes_in_place(graph, inside, names, n)}
    for n in leaving:
        if full[n] not in existing:
            data = graph.nodes[n]
            lines.append(f"{full[n]} = {np_}.empty({module.shape(data[ir.SHAPE])}, dtype={np_}.{data[ir.DTYPE]})"
                         "  # leaves the loop: filled block by block")
    for n in reductions:
        data = graph.nodes[n]
        zero = (f"{np_}.zeros({module.shape(data[ir.SHAPE])}, dtype={np_}.{data[ir.DTYPE]})" if data[ir.SHAPE]
                else module.backend.scalar("0", data[ir.DTYPE]))
        lines.append(f"{full[n]} = {zero}  # {n!r} {ir.op_of(graph, n)}: the sum of its blocks' parts")
    # every other block buffer is allocated once, before the loop, and each block takes its
    # rows of it (the last block may have fewer): allocated per block, a buffer cost a malloc
    # and, once the blocks freed at the end of a block were trimmed from the heap, a page
    # fault per page (the elementwise case's forward_pass in a fresh process: 64 ms, 50 ms
    # once a big free had raised malloc's thresholds; unblocked 53 ms)
    owned = {}
    for n in inside:
        name = names[n]
        if (name not in direct and name not in owned and _writes_in_place(graph, inside, names, n)
                and _row_bytes(graph, n) is not None):
            owned[name] = module.namespace.name(("block", name), f"{name.removesuffix('_rows')}_block")
            data = graph.nodes[n]
            lines.append(f"{owned[name]} = {np_}.empty({module.shape((block, *data[ir.SHAPE][1:]))}, "
                         f"dtype={np_}.{data[ir.DTYPE]})  # {name} of every block")
    body = [f"{names[a]} = {full[a]}[{rows}]" for a in sliced]
    body += [f"{names[n]} = {full[n]}[{rows}]" for n in leaving if names[n] in direct]
    body += [f"{name} = {buffer}[:{bound} - {start}]" for name, buffer in owned.items()]
    saved_local = module.local
    module.local = {**saved_local, **names, **{n: full[n] for n in reductions}}
    module.outside = saved_local  # a view read whole (x.T) reads the array, not its block (_kind)
    freed_last = False
    deleted, deferred = set(), []  # block names deleted in the loop; full names deleted after it

    def outer(node):  # a value's name outside the loop
        return saved_local.get(node) or module.namespace.name(node)

    try:
        for step in steps:
            if step.node in reductions:
                body.append(f"{full[step.node]} += {module.expression(step.node)}"
                            f"  # {step.node!r} {ir.op_of(graph, step.node)}")
            else:
                # never into a slice of a full array: a block of its own stays in the cache,
                # where writing into the slice would send the block back to memory
                lines_ = module.statement(step.node, step.donates - set(sliced))
                if names[step.node] in direct or names[step.node] in owned:
                    lines_ = [_into(line, names[step.node], np_) for line in lines_]
                body.extend(lines_)
                if step.node in leaving and names[step.node] not in direct:
                    body.append(f"{full[step.node]}[{rows}] = {names[step.node]}")
            frees = []
            for d in step.frees:
                if d in within:
                    if module.ident(d) != module.ident(step.node):  # else its buffer is handed on
                        frees.append(names[d])
                        if full[d] in existing:  # the full array of the same name dies too
                            deferred.append(full[d])
                else:  # a value from before the loop: every block reads it
                    deferred.append(outer(d))
            freed_last = bool(frees)
            if frees:
                body.append("del " + ", ".join(frees))
                deleted.update(frees)
    finally:
        module.local, module.outside = saved_local, None
    # a block's names are deleted at the end of each block: the last would keep its buffers
    # (and, through a view, a whole array) alive, and an empty batch binds none of them
    ends = list(dict.fromkeys(names[n] for n in sliced + inside if names[n] not in deleted))
    if ends and freed_last:  # one del ends the block
        body[-1] += ", " + ", ".join(ends)
    elif ends:
        body.append("del " + ", ".join(ends))
    lines.append(f"for {start} in range(0, {bound}, {block}):")
    lines.extend("    " + line for line in body)
    kept = {full[n] for n in leaving} | {full[n] for n in reductions}
    after = list(dict.fromkeys(name for name in deferred if name not in kept)) + list(owned.values())
    if after:
        lines.append("del " + ", ".join(after))
    return lines


def _writes_in_place(graph, inside: list[str], names: dict[str, str], node: str) -> bool:
    """Whether every value of ``node``'s block buffer is of its float dtype: ufuncs then write
    into the full array's slice (``out=``) what they would have allocated (an int or bool
    result, or a buffer changing dtype, keeps a block of its own and its copy)."""
    dtype = graph.nodes[node][ir.DTYPE]
    return np.dtype(dtype).kind == "f" and all(
        graph.nodes[n][ir.DTYPE] == dtype for n in inside if names[n] == names[node])


def _into(line: str, name: str, np_: str) -> str:
    """``line`` writing into the array ``name`` already is (a slice) where it binds ``name``:
    ``name = numpy.f(a, b)`` becomes ``numpy.f(a, b, out=name)``, any other value is copied
    in (``name[...] = ...``); a line that does not bind ``name`` is unchanged."""
    head = f"{name} = "
    if not line.startswith(head):
        return line
    text, sep, comment = line[len(head):].partition("  # ")
    call = f"{np_}."
    function, paren, args = text[len(call):].partition("(")
    if (text.startswith(call) and paren and function.isidentifier()
            and isinstance(getattr(np, function, None), np.ufunc) and _closes_at_end(args)):
        return f"{call}{function}({args[:-1]}, out={name}){sep}{comment}"
    return f"{name}[...] = {text}{sep}{comment}"


def _closes_at_end(args: str) -> bool:
    """Whether ``args`` (what follows a call's opening parenthesis) closes it at its last
    character only (``a, f(b))``, not ``a) + f(b)``)."""
    depth = 1
    for k, char in enumerate(args):
        depth += (char == "(") - (char == ")")
        if depth == 0:
            return k == len(args) - 1
    return False


def _block_name(module, name: str, hint: str | None = None) -> str:
    """The block of buffer ``name`` in a loop (``x_rows``); with ``hint``, a block of its own
    beside the slice of ``name`` (another key: never the slice's identifier)."""
    if hint is None:
        return module.namespace.name(("rows", name), f"{name}_rows")
    return module.namespace.name(("own rows", name), f"{hint}_rows")


def _block_names(module, inside: list[str], full: dict[str, str], existing: set[str]) -> dict[str, str]:
    """The names of the region's own blocks: one per buffer, as outside the loop; but the
    values that outside the loop take over a dying array from before it (one name) are, in
    it, blocks of their own, named after the last of them (``d_a_1_rows`` beside the slice
    ``d_add_p_4_rows``): a block never writes into a slice."""
    last = {full[n]: n for n in inside}
    return {n: (_block_name(module, full[n], module.namespace.name(last[full[n]])) if full[n] in existing
                else _block_name(module, full[n])) for n in inside}


def _bound(fn, dim) -> bool:
    """Whether the function has ``dim`` as a name: an int, a bound or a passed symbolic dim."""
    if isinstance(dim, (int, np.integer)) or getattr(dim, "is_Integer", False):
        return True
    known = {d for d, _, _ in fn.binds} | set(fn.dim_args)
    return isinstance(dim, sympy.Symbol) and dim in known
