"""DOT-text snapshots of the lecture's graphs as declared, with values and gradients (no ``dot``).

The declared graph is the user's own, so these change only when the drawing does. After
an intended change of the drawing, look at the diff and rewrite them:

    python3 tests/test_render_snapshots.py --update
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import graphc as gc  # noqa: E402
from graphc.drawing import to_digraph  # noqa: E402

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots" / "render"

CASES = {
    "linear_regression": lambda: gc.zoo.linear_regression(),
    "relu_neuron_live": lambda: gc.zoo.relu_neuron(w=1.5),
    "relu_neuron_dead": lambda: gc.zoo.relu_neuron(w=-1.0),
    "wide_relu": lambda: gc.zoo.wide_relu(),
    "wide_relu_dead_output": lambda: gc.zoo.wide_relu(dead_output=True),
    "residual": lambda: gc.zoo.residual(),
    "recall_xor": lambda: gc.zoo.recall_xor(),
}


def current(name: str) -> str:
    g, feeds = CASES[name]()
    return to_digraph(g, feeds=feeds).source


@pytest.mark.parametrize("name", sorted(CASES))
def test_dot_snapshot(name):
    path = SNAPSHOTS / f"{name}.dot"
    assert path.exists(), f"no snapshot {path.name}: run python3 tests/test_render_snapshots.py --update"
    assert current(name) == path.read_text(encoding="utf-8"), (
        f"the drawing of {name} changed; if intended, run python3 tests/test_render_snapshots.py --update")


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    for case in sorted(CASES):
        (SNAPSHOTS / f"{case}.dot").write_text(current(case), encoding="utf-8")
        print("wrote", case)
