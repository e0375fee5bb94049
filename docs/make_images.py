"""Draw the pictures of docs/rendering.md into docs/images/ (needs Graphviz's dot).

    python3 docs/make_images.py

Each picture is one of the lecture's networks drawn by graphc itself; the page shows them.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import graphc as gc  # noqa: E402
from graphc.drawing import render  # noqa: E402

OUT = HERE / "images"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    g, feeds = gc.zoo.relu_neuron(w=-1.0)
    prog = gc.compile(g)
    render(prog.stages["expanded"], OUT / "dead_relu_neuron.svg", feeds=feeds, title="ReLU neuron, w = −1: dead")
    render(prog.stages["differentiated"], OUT / "dead_relu_neuron_backward.svg", feeds=feeds,
           title="ReLU neuron, w = −1: the joint forward + backward graph")
    g, feeds = gc.zoo.wide_relu()
    render(g, OUT / "wide_relu.svg", feeds=feeds, title="wide ReLU: z¹₂ < 0, its weights get no update")
    g, feeds = gc.zoo.wide_relu(dead_output=True)
    render(g, OUT / "wide_relu_dead_output.svg", feeds=feeds, title="wide ReLU: z² < 0, no weight updates")
    g, feeds = gc.zoo.residual()
    render(g, OUT / "residual.svg", feeds=feeds, title="residual: the skip path keeps w1 learning")
    g, feeds = gc.zoo.recall_xor()
    prog = gc.compile(g)
    render(prog.stages["scheduled"], OUT / "recall_xor_scheduled.svg", feeds=feeds,
           title="Recall network, scheduled: a fused kernel")
    g, feeds = gc.zoo.wide_relu()
    prog = gc.compile(g)
    render(prog.stages["interleaved"], OUT / "wide_relu_interleaved.svg",
           title="wide ReLU, after a pass: the nodes it created are marked")
    g, _ = gc.zoo.deep_sigmoid(depth=30)
    render(gc.compile(g).stages["expanded"], OUT / "deep_sigmoid_summary.svg", max_nodes=60,
           title="30 sigmoid layers, summarized (full=True draws all)")
    for name, title in (("deep_sigmoid", "5 sigmoid layers: the first layer's gradient vanishes"),
                        ("deep_residual", "their residual twin: the skip path carries the gradient")):
        g, feeds = gc.zoo.get(name)(depth=5, width=2)
        render(g, OUT / f"{name}_values.svg", feeds=feeds, title=title)
    g = gc.Graph("nan")
    x = g.input("x", shape=(2,))
    g.output("loss", gc.sum(gc.log(x)))
    render(g, OUT / "nan.svg", feeds={"x": [-1.0, 2.0]}, title="log of a negative number: NaN in red")
    print("\n".join(sorted(p.name for p in OUT.iterdir())))


if __name__ == "__main__":
    main()
