"""Small graphs several test modules build: a random DAG for the ordering tests, and a net
whose backward pass updates a param before it reads an input (for the in-place steps)."""

import random

import networkx as nx

import graphc as gc
from graphc import ir


def random_dag(seed: int, n: int = 50, shuffled: bool = True) -> nx.MultiDiGraph:
    """``n`` input nodes and random edges (a value read twice at times, as in x * x); when
    ``shuffled``, the insertion order is unrelated to the DAG's order."""
    rng = random.Random(seed)
    ranks = list(range(n))
    if shuffled:
        rng.shuffle(ranks)  # the order of the DAG, unrelated to insertion order
    graph = ir.new_graph("dag")
    for node in (rng.sample(range(n), n) if shuffled else range(n)):
        graph.add_node(f"v{node}", op="input", mark="created")
    for target in range(n):
        for _ in range(rng.randrange(4)):
            source = rng.randrange(n)
            if ranks[source] < ranks[target]:
                graph.add_edge(f"v{source}", f"v{target}", arg=0)  # twice at times: x * x
    return graph


def input_read_late() -> gc.Graph:
    """The backward pass updates a (d_a = 2a) before it reads x (d_W = x.T @ ...)."""
    g = gc.Graph("input_read_late")
    x = g.input("x", shape=(3, 3))
    W, a = g.param("W", shape=(3, 3)), g.param("a", shape=(3, 3))
    g.output("loss", gc.sum(gc.tanh(x @ W)) + gc.sum(a * a))
    return g
