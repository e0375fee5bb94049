"""The training pair of functions for a joint forward+backward graph.

``train_forward`` computes the forward part and returns the outputs and exactly the
values the backward pass reuses (``saved``, plus the symbolic dims it needs);
``backward_pass(*saved, seed)`` computes the gradients, in ``GRADS`` order.
"""

from __future__ import annotations

import networkx as nx

from .. import ir
from ..schedule import levels
from .emit import SOURCES, FunctionSpec, Module

__all__ = ["train_functions"]


def _is_backward(graph: nx.MultiDiGraph, node: str) -> bool:
    """Computed by backward_pass: backward nodes, except those that read forward values only
    and that interleave marked to run early (train_forward computes and saves them)."""
    data = graph.nodes[node]
    return data.get(ir.PHASE) == ir.BACKWARD and not data.get(ir.EARLY)


def train_functions(forward_module: Module, joint: nx.MultiDiGraph) -> str:
    """Source of ``train_forward``, ``backward_pass`` and, when it applies, ``sgd_step``
    (sharing the module's namespace and constants)."""
    module = Module(joint, namespace=forward_module.namespace, constants=forward_module.constants)
    seed = joint.graph.get(ir.SEED)
    seed_node = seed if seed in joint else None
    by_level = levels(joint)
    backward_levels = [[n for n in level if _is_backward(joint, n) and n != seed_node] for level in by_level]
    grads = list(joint.graph[ir.GRADS].values())
    grad_nodes = set(grads)

    # the forward values the backward pass reads: operands of backward nodes, and
    # gradients that are forward values themselves
    saved: list[str] = []
    seen: set[str] = set()  # saved, as a set: a list's `in` made this quadratic
    for level in by_level:
        for node in level:
            if _is_backward(joint, node) or joint.nodes[node][ir.OP] == "const":
                continue
            readers = [s for s in joint.successors(node) if _is_backward(joint, s)]
            root = module.base(node)
            if (readers or node in grad_nodes) and root not in seen and ir.op_of(joint, root) != "const":
                saved.append(root)
                seen.add(root)
    seed_name = module.namespace.name(seed_node) if seed_node else "seed"  # "seed" is reserved

    backward_spec = FunctionSpec("backward_pass", saved, backward_levels, grads,
                                 doc="The backward pass: gradients in GRADS order, from the saved values.")
    backward_text = module.function(backward_spec, extra_params=[seed_name], dims_as_params=True)
    dims = module.last_dims

    forward_levels = [[n for n in level if not _is_backward(joint, n) and joint.nodes[n][ir.OP] not in SOURCES]
                      for level in by_level]
    forward_spec = FunctionSpec(
        "train_forward", [s for s in ir.sources(joint) if s != seed_node],
        forward_levels, list(joint.graph[ir.OUTPUTS]),
        doc="The forward pass for training: (outputs, the values backward_pass reuses).",
    )
    forward_text = module.function(forward_spec, saved=saved, extra_returns=dims)
    step_text = _sgd_step(module, joint, forward_spec.params, by_level)
    return forward_text + "\n\n" + backward_text + ("\n\n" + step_text if step_text else "")


def _sgd_step(module: Module, joint: nx.MultiDiGraph, params: list[str], by_level) -> str:
    """``sgd_step``: forward, backward and ``p -= lr * grad`` in place, in one function.

    Each update runs as soon as its gradient exists and nothing reads the param any
    more, and the gradient is freed right away: peak memory holds one gradient at a time.
    Only for a scalar output whose wrt values are all params.
    """
    grads = joint.graph[ir.GRADS]
    learned = set(joint.graph[ir.PARAMS])
    if joint.graph.get(ir.SEED) != "scalar" or any(name not in learned for name in grads):
        return ""
    body = [[n for n in level if joint.nodes[n][ir.OP] not in SOURCES] for level in by_level]
    spec = FunctionSpec("sgd_step", params, body, list(joint.graph[ir.OUTPUTS]),
                        doc="One step of SGD: the outputs, with every param updated in place (p -= lr * grad).")
    return module.function(spec, extra_params=["lr"], updates={node: name for name, node in grads.items()})
