"""What a graph holds that can change in place, to test that two graphs share none of it."""

import numpy as np

from graphc import compile_cache


def mutable_parts(graph) -> dict[int, str]:
    """Every mutable object a graph holds (its adjacency dicts, node and edge attribute dicts,
    graph attributes, and the dicts, lists, sets and arrays inside them), by id."""
    parts: dict[int, str] = {}

    def walk(value, where):
        if isinstance(value, (dict, list, set, np.ndarray)):
            parts[id(value)] = where
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}[{key!r}]")
        elif isinstance(value, (list, tuple, set)):
            for item in value:
                walk(item, f"{where} item")

    walk(graph.graph, "graph attributes")
    for name in ("_node", "_succ", "_pred"):
        walk(getattr(graph, name), name)
    return parts


def shared(one, other) -> list[str]:
    a, b = mutable_parts(one), mutable_parts(other)
    return [a[key] for key in a.keys() & b.keys()]


def spelled(graph) -> str:
    """Everything a graph holds, in order (its content key without options)."""
    return compile_cache.content_key(graph, {})
