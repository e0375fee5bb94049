"""The compiler's pipeline: one ordered list of named stages, read top to bottom.

    declare -> verify -> rewrite composites -> expand composites -> optimize
            -> differentiate -> optimize the joint graph -> fuse -> share -> interleave
            -> schedule -> lower -> load
            (and, for the plain forward pass: fuse -> schedule)

Each stage belongs to a branch: ``forward`` stages run on the declared graph; ``joint``
stages run on the joint forward+backward graph when there is something to
differentiate (``wrt`` names at least one value); ``inference`` stages make the graph
of the plain forward pass from the optimized one. There is one backward: it is
differentiated with the output's cotangent as an input (``d_<output>``), so
``value_and_grad`` with and without ``seed``, ``sgd_step`` (cotangent 1) and the saved
module all run the same code. Every stage's output is kept by name (``gc.compile``'s
own run keeps none: it makes them again when ``prog.stages`` is first read, see ``_compile``).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from . import compile_cache, disk_cache, ir
from .builder import Graph, from_networkx
from .differentiate import differentiate, scalar_output
from .errors import GradientError
from .lower.blocking import check_blocking
from .lower.libraries import runtime
from .lower.source import lower
from .passes.expand import expand
from .passes.fuse import fuse
from .passes.interleave import interleave
from .passes.optimize import optimize
from .passes.share import share
from .passes.stable import rewrite_composites
from .predict import inference_graph
from .program import Program, check_threads
from .schedule import mark_levels, schedule
from .together import plan_parallel
from .verify import verify

__all__ = ["compile", "grad", "STAGES", "Stage", "FORWARD_STAGES", "JOINT_STAGES", "INFERENCE_STAGES",
           "gradient_target"]

Pass = Callable[[nx.MultiDiGraph], nx.MultiDiGraph]

FORWARD, JOINT, INFERENCE = "forward", "joint", "inference"


@dataclass(frozen=True)
class Request:
    """What is differentiated: the output ``target`` with respect to ``wrt``."""

    wrt: tuple[str, ...]
    target: str


@dataclass(frozen=True)
class Stage:
    name: str
    branch: str  # FORWARD, JOINT or INFERENCE
    run: Callable  # graph -> graph (differentiation also takes the Request)
    takes_request: bool = False

    def __call__(self, graph: nx.MultiDiGraph, request: Request) -> nx.MultiDiGraph:
        return self.run(graph, request) if self.takes_request else self.run(graph)


def differentiate_stage(forward: nx.MultiDiGraph, request: Request) -> nx.MultiDiGraph:
    """The joint graph, with the target's cotangent as an input node (the one backward)."""
    joint = differentiate(forward, list(request.wrt), request.target, seeded=True)
    joint.graph.pop(ir.STATS, None)
    return joint


# The pipeline, in order. A branch's stages run one after another on its own graph.
STAGES: tuple[Stage, ...] = (
    Stage("rewritten", FORWARD, rewrite_composites),  # log(softmax) -> log_softmax, bce(sigmoid) -> logits form
    Stage("expanded", FORWARD, expand),
    Stage("optimized", FORWARD, optimize),
    Stage("differentiated", JOINT, differentiate_stage, takes_request=True),
    Stage("optimized_joint", JOINT, optimize),
    Stage("fused", JOINT, fuse),
    Stage("shared", JOINT, share),  # a costly part two kernels repeat (sigmoid in silu and silu') is computed once
    Stage("interleaved", JOINT, interleave),  # long backward products start during the forward pass
    Stage("scheduled", JOINT, mark_levels),
    Stage("fused", INFERENCE, fuse),
    Stage("scheduled", INFERENCE, mark_levels),
)

# The branches as (name, pass) lists, for the docs (docs/make_pipeline.py).
FORWARD_STAGES = [(s.name, s.run) for s in STAGES if s.branch == FORWARD]
JOINT_STAGES = [(s.name, s.run) for s in STAGES if s.branch == JOINT]
INFERENCE_STAGES = [(s.name, s.run) for s in STAGES if s.branch == INFERENCE]

def _run(graph: nx.MultiDiGraph, branch: str, request: Request | None, into: dict,
         until: Sequence[str] | None = None) -> nx.MultiDiGraph:
    """Run ``branch``'s stages in order (only those in ``until`` if given), keeping each output."""
    for stage in STAGES:
        if stage.branch != branch or (until is not None and stage.name not in until):
            continue
        inherited = graph.graph.get(ir.STATS)
        graph = stage(graph, request)
        if inherited is not None and graph.graph.get(ir.STATS) == inherited:
            graph.graph.pop(ir.STATS)  # each stage shows what its own pass did, nothing older
        into[stage.name] = graph
    return graph


def gradient_target(forward: nx.MultiDiGraph, of: str | None) -> str:
    """The output differentiated: ``of``, else the one scalar output, else the first output."""
    outputs = forward.graph[ir.OUTPUTS]
    if of is not None:
        if of not in outputs:
            raise GradientError(f"of={of!r} is not an output of graph {forward.graph[ir.NAME]!r}; "
                                f"outputs are {outputs!r}")
        return of
    scalars = [o for o in outputs if tuple(forward.nodes[o][ir.SHAPE]) == ()]
    return scalars[0] if len(scalars) == 1 else outputs[0]


def _as_graph(graph: Graph | nx.DiGraph) -> Graph:
    return graph if isinstance(graph, Graph) else from_networkx(graph)


def compile(graph: Graph | nx.DiGraph, wrt: Sequence[str] | None = None, of: str | None = None,  # noqa: A001
            backend: str = "numpy", parallel: int = 1, *, cache: bool = True,
            cache_dir: str | os.PathLike | None = None, blocking: str | int = "auto") -> Program:
    """Compile a declared network into a :class:`Program`.

    ``wrt`` (default: every param) names the values gradients are taken with respect to;
    ``of`` the output whose gradient is taken (default: the one scalar output, else the
    first output). Without a scalar to differentiate, ``value_and_grad`` needs an
    explicit cotangent ``seed``. ``backend`` names the array library the program runs
    on: ``"numpy"``, or ``"torch"``, ``"jax"``, ``"cupy"``, ``"array_api_strict"`` where
    installed (see docs/backends.md). ``parallel=k`` runs the big independent statements
    of each dependency level on a pool of k threads (``prog.plan.parallel`` lists them; see
    docs/parallel.md). ``blocking`` says which long elementwise chains over big arrays run a
    block of rows at a time, so that a block stays in the cache: ``"auto"`` (a cost model),
    ``"off"``, or a number of rows (every region it can; see graphc/lower/blocking.py).

    A graph compiled before in this process, with the same content and options, comes
    from the compile cache (``graphc/compile_cache.py``) as a program of its own;
    ``cache=False`` (or the environment variable ``GRAPHC_NO_CACHE=1``) compiles afresh.
    ``cache_dir`` (or the environment variable ``GRAPHC_CACHE_DIR``) also keeps each
    compile's module in that folder, where a compile in another process finds it
    (``graphc/disk_cache.py``, docs/compile-cache.md).

    >>> import graphc as gc
    >>> g = gc.Graph("affine"); x = g.input("x", shape=(2,))
    >>> _ = g.output("y", 2 * x + 1)
    >>> gc.compile(g).forward({"x": [1.0, 2.0]})["y"]
    array([3., 5.])

    Python's cyclic garbage collector is paused meanwhile: compiling allocates many
    small objects that live until the end, and every collection would walk them all
    again (a 10,000-node graph compiled about a third slower, and worse than linearly).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        graph = _as_graph(graph)
        runtime(backend)  # an unknown or missing library fails before any work
        threads = check_threads(parallel)
        blocking = check_blocking(blocking)
        key = None
        if cache and compile_cache.enabled():
            options = {"wrt": None if wrt is None else tuple(wrt), "of": of, "backend": backend, "parallel": threads,
                       "blocking": blocking}
            try:
                key = compile_cache.content_key(graph.nx, options)
            except compile_cache.Uncacheable:
                key = None
        made = compile_cache.MEMORY.get(key) if key is not None else None
        folder = disk_cache.directory(cache_dir) if key is not None else None
        if made is not None and folder is not None:
            disk_cache.keep(folder, key, made["code"])  # compiled in this process before the folder was named
        if made is None:
            code = disk_cache.read(folder, key) if folder is not None else None
            if code is not None:
                return _program(_from_disk(graph.nx, code, wrt, of, backend, threads, blocking))
            made = _compile(graph.nx, wrt, of, backend, threads, blocking, keep=False)
            if key is not None:
                compile_cache.MEMORY.put(key, made)
            if folder is not None:
                disk_cache.write(folder, key, made["code"])
        # lent even when not cached: the stages are made when first read, from the declared
        # graph as it is now, which the program must not share with them
        return _program(compile_cache.lent(made))
    finally:
        if collecting:
            gc.enable()


def _program(made: dict) -> Program:
    """The program of what the pipeline made (a dict of Program's arguments but the two callables;
    ``made["graph"]`` makes the program's own graph, which ``prog.predict`` cuts down)."""
    return Program(**made, inference=functools.partial(_outputs_alone, made["graph"]), compiler=compile)


def _declared(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The declared stage: a copy sharing no attribute dict or array with the caller's graph
    (changing the program's graphs must not change the graph, nor, through it, the next
    compile), verified."""
    return verify(compile_cache.fresh_copy(graph))


def _from_disk(graph: nx.MultiDiGraph, code, wrt: Sequence[str] | None, of: str | None, backend: str,
               threads: int, blocking: str | int) -> dict:
    """Program arguments around a module read from the disk cache: the declared graph copied
    now (which the program's checks read, and nothing changes), the program's own copy of it
    (``prog.graph``), the stages and the schedule compiled from it when first read."""
    declared = _declared(graph)
    later = disk_cache.Later(functools.partial(_compile, declared, wrt, of, backend, threads, blocking))
    return dict(declared=declared, graph=compile_cache.copier(declared),
                stages=disk_cache.LaterStages(later, "stages"),
                inference_stages=disk_cache.LaterStages(later, "inference_stages"),
                plan=disk_cache.LaterPlan(later, threads), code=code,
                wrt=list(declared.graph[ir.PARAMS] if wrt is None else wrt), of=of,
                target=gradient_target(declared, of), backend=backend, threads=threads)


def _compile(graph: nx.MultiDiGraph, wrt: Sequence[str] | None, of: str | None, backend: str, threads: int,
             blocking: str | int = "auto", keep: bool = True) -> dict:
    """The pipeline itself: every branch in order, then scheduling and lowering.

    With ``keep``, every stage's graph is kept (each pass edits a copy of its input).
    Without it (gc.compile's own run: most programs are run and never have their stages
    read) each pass edits the graph it is given, and the stages are made again, by a run
    that keeps them, when first read (:func:`_kept_stages`)."""
    library = runtime(backend)
    declared = _declared(graph)
    library.check_dtypes({data[ir.DTYPE] for data in declared._node.values()}, declared.graph[ir.NAME])
    wrt = tuple(declared.graph[ir.PARAMS] if wrt is None else wrt)
    target = gradient_target(declared, of)
    if keep:
        stages, inference, plain, joint = _branches(declared, wrt, target)
    else:
        with ir.in_place():  # the declared graph is the program's: the passes edit a copy of it
            _, _, plain, joint = _branches(ir.copy_graph(declared), wrt, target)
    plan = schedule(plain, joint)
    if threads > 1:
        plan = dataclasses.replace(plan, parallel=plan_parallel(plan, threads))
    code = lower(plan, library.library.backend, library.namespace, blocking)
    if not keep:
        later = disk_cache.Later(functools.partial(_kept_stages, declared, wrt, target, plain, joint))
        stages = disk_cache.LaterStages(later, "stages")
        inference = stages if joint is None else disk_cache.LaterStages(later, "inference_stages")
    return dict(declared=declared, stages=stages, inference_stages=inference, plan=plan, code=code,
                wrt=list(wrt), of=of, target=target, backend=backend, threads=threads)


def _branches(declared: nx.MultiDiGraph, wrt: tuple[str, ...], target: str, whole: bool = True) -> tuple:
    """Run the branches from ``declared``: the stages, the inference stages, and the inference
    and joint graphs (verified; joint None: nothing to differentiate). Not ``whole``: without
    the last stage of the joint and the inference branch (see :func:`_kept_stages`).

    ``differentiate`` copies the forward graph (the branch point: it feeds both the joint and
    the inference branch), so a run in place (``ir.in_place``) edits no graph it still needs."""
    stages: dict[str, nx.MultiDiGraph] = {"declared": declared}
    forward = _run(declared, FORWARD, None, stages)
    joint = None
    if wrt:  # something to differentiate
        joint = _run(forward, JOINT, Request(wrt, target), stages, None if whole else _BUT_LAST[JOINT])
    inference: dict[str, nx.MultiDiGraph] = stages if joint is None else {}  # no joint: the program's last stages
    plain = _run(forward, INFERENCE, None, inference, None if whole else _BUT_LAST[INFERENCE])
    if whole:
        joint = None if joint is None else verify(joint)
        plain = verify(plain)
    return stages, inference, plain, joint


# Each branch's stage names in order; the last one's graph is the schedule's (plan.joint, plan.forward).
_NAMES = {JOINT: [name for name, _ in JOINT_STAGES], INFERENCE: [name for name, _ in INFERENCE_STAGES]}
_BUT_LAST = {branch: names[:-1] for branch, names in _NAMES.items()}


def _kept_stages(declared: nx.MultiDiGraph, wrt: tuple[str, ...], target: str, plain: nx.MultiDiGraph,
                 joint: nx.MultiDiGraph | None) -> dict:
    """The stages of a program compiled without keeping them, made again by a run that keeps
    each one (the pipeline is deterministic: these are the graphs a kept run makes); the last
    stage of each branch is the schedule's own graph, so ``plan.joint is stages["scheduled"]``."""
    with ir.in_place(False):
        stages, inference, _, _ = _branches(declared, wrt, target, whole=False)
    if joint is not None:
        stages[_NAMES[JOINT][-1]] = joint
    inference[_NAMES[INFERENCE][-1]] = plain
    return dict(stages=stages, inference_stages=inference)


def _outputs_alone(graph: Callable[[], nx.MultiDiGraph], outputs: Sequence[str]) -> Program:
    """The program of ``outputs`` alone, from the inputs they read (``prog.predict``), cut from
    the program's graph (``graph()`` makes it, or gives it once made: ``prog.graph``)."""
    return compile(inference_graph(graph(), outputs), wrt=[])


def _bind_seed(joint: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The joint graph with its cotangent input made the constant 1 (a scalar's own gradient)."""
    seed = joint.graph.pop(ir.SEED)
    data = joint.nodes[seed]
    data[ir.OP], data[ir.ATTRS] = "const", {"value": np.ones((), dtype=data[ir.DTYPE])[()].item()}
    joint.graph[ir.INPUTS] = [n for n in joint.graph[ir.INPUTS] if n != seed]
    return joint


def grad(graph: Graph | nx.DiGraph, of: str, wrt: Sequence[str] | None = None) -> Graph:
    """A new graph: ``graph`` plus the gradient of output ``of`` w.r.t. each of ``wrt``.

    The gradients are ordinary outputs named ``d<of>/d<name>``, computed by ordinary ops,
    so the result can be differentiated again (Hessian-vector products, gradient penalties).
    It is what ``gc.compile`` makes of ``graph`` up to the optimized joint graph: the same
    stability rewrites, the same backward, the same optimizer.

    >>> import graphc as gc
    >>> g = gc.Graph("cube"); x = g.input("x", shape=())
    >>> _ = g.output("y", x ** 3)
    >>> g2 = gc.grad(g, "y", wrt=["x"])
    >>> g2.outputs
    ['y', 'dy/dx']
    >>> float(gc.compile(g2).forward({"x": 2.0})["dy/dx"])
    12.0
    """
    declared = verify(ir.copy_graph(_as_graph(graph).nx))
    forward = _run(declared, FORWARD, None, {})
    scalar_output(forward, of)  # the gradient of a scalar: raises the explanation otherwise
    wrt = tuple(declared.graph[ir.PARAMS] if wrt is None else wrt)
    joint = _run(forward, JOINT, Request(wrt, of), {}, until=("differentiated",))
    joint = _run(_bind_seed(joint), JOINT, None, {}, until=("optimized_joint",))
    joint.graph.pop(ir.STATS, None)
    for node in joint.nodes:
        joint.nodes[node][ir.PHASE] = ir.FORWARD
        joint.nodes[node].pop(ir.GRAD_OF, None)
    out = Graph(joint.graph[ir.NAME], nx_graph=joint)
    grads = joint.graph.pop(ir.GRADS)
    # handles first: two params may share one gradient node, which the first output renames
    handles = {name: Graph.node(out, node) for name, node in grads.items()}
    out._auto.update(grads.values())
    for name, handle in handles.items():
        output = f"d{of}/d{name}"
        if output in joint:
            output = ir.fresh_id(joint, output)
        out.output(output, handle)
    verify(joint)
    return out
