"""The ids differentiation gives the nodes it makes, and gradients of a forward graph whose
nodes were inserted in any order.

The naming rule (``differentiate._name_backward``): the node holding W's gradient is
``d_W``, the node holding value h's cotangent ``d_h``, a step towards it ``d_h_1``...;
gradients choose first, then holders, then steps (each in the order they were made), and
an id already taken goes to the next free suffix. References: ids worked out by hand from
that rule, central differences in float64 over numpy written by hand.
"""

import networkx as nx
import numpy as np
import pytest
from numeric_reference import numeric_grad

import graphc as gc
from graphc import ir


def colliding_names() -> gc.Graph:
    """Forward ids that backward stems collide with: a param named d_W, values h and h_1."""
    g = gc.Graph("names")
    x = g.input("x", shape=("N", 2))
    W = g.param("W", shape=(2, 2))
    d_W = g.param("d_W", shape=(2,))
    h = gc.tanh(x @ W).named("h")
    h_1 = gc.tanh(h + d_W).named("h_1")
    g.output("loss", gc.sum(h_1 * h))
    return g


def test_backward_ids_follow_the_naming_rule_when_names_collide():
    joint = gc.compile(colliding_names()).stages["differentiated"]
    made = {n: (d[ir.OP], d.get(ir.GRAD_OF), ir.operands(joint, n)) for n, d in joint.nodes(data=True)
            if d[ir.PHASE] == ir.BACKWARD}
    assert made == {
        "d_loss": ("input", "loss", []),  # the seed
        # the gradients: d_W is a param's id, so W's takes d_W_1; d_W's is d_d_W
        "d_d_W": ("sum", "d_W", ["d_add"]),
        "d_W_1": ("matmul", "W", ["d_W_2", "d_matmul"]),
        # the holders of each value's cotangent
        "d_mul": ("broadcast", "mul", ["d_loss"]),
        "d_h_1": ("fused", "h_1", ["d_mul", "h"]),
        "d_add": ("fused", "add", ["d_h_1", "h_1"]),
        "d_h": ("add", "h", ["d_h_2", "d_add"]),
        "d_matmul": ("fused", "matmul", ["d_h", "h"]),
        # the steps: d_h_1 holds h_1's cotangent, d_W_1 is W's gradient
        "d_h_2": ("fused", None, ["d_mul", "h_1"]),
        "d_W_2": ("transpose", None, ["x"]),
    }
    assert list(made) == ["d_loss", "d_mul", "d_h_1", "d_h_2", "d_add", "d_d_W", "d_h", "d_matmul", "d_W_2",
                          "d_W_1"]  # the order they were made in
    assert joint.graph[ir.GRADS] == {"W": "d_W_1", "d_W": "d_d_W"}


FEEDS = {"x": np.array([[0.3, -1.2], [0.8, 0.1], [-0.5, 0.7]]), "W": np.array([[0.4, -0.9], [1.1, 0.2]]),
         "d_W": np.array([0.05, -0.3])}


def loss_by_hand(x, W, d_W):
    h = np.tanh(x @ W)
    return float(np.sum(np.tanh(h + d_W) * h))


def inserted_in(graph: nx.MultiDiGraph, order: list) -> nx.MultiDiGraph:
    out = nx.MultiDiGraph()
    out.graph.update({key: list(value) if isinstance(value, list) else value for key, value in graph.graph.items()})
    for node in order:
        out.add_node(node, **dict(graph.nodes[node]))
    edges = list(graph.edges(data=True))
    for source, target, data in reversed(edges):
        out.add_edge(source, target, **dict(data))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_forward_graph_inserted_in_any_order_has_the_gradients_of_central_differences(seed):
    declared = colliding_names().nx
    order = list(declared.nodes)
    np.random.default_rng(seed).shuffle(order)  # operands after their readers, as it falls
    prog = gc.compile(inserted_in(declared, order))
    joint = prog.stages["differentiated"]
    assert len(set(joint.nodes)) == joint.number_of_nodes()
    assert all(ir.operands(joint, n) for n, d in joint.nodes(data=True)
               if d[ir.PHASE] == ir.BACKWARD and d[ir.OP] not in ("input", "const"))
    loss, grads = prog.value_and_grad(FEEDS)
    assert float(loss["loss"]) == pytest.approx(loss_by_hand(**FEEDS), rel=1e-12)
    assert set(grads) == {"W", "d_W"}
    for name in grads:
        reference = numeric_grad(lambda value, name=name: loss_by_hand(**{**FEEDS, name: value}), FEEDS[name])
        np.testing.assert_allclose(grads[name], reference, rtol=1e-6, atol=1e-9, err_msg=name)
