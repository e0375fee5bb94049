"""The ``graphc`` command line."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import zoo
from .errors import GraphcError
from .pipeline import compile

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    graph, feeds = zoo.recall_xor()
    program = compile(graph)
    values = program.forward(feeds)
    print(f"graphc demo: the lecture's 'Recall' network ({graph.name}) on the XOR inputs")
    for row, value in zip(feeds["x"], np.ravel(values["out"])):
        print(f"  x = {row.tolist()}  ->  {value:+.6f}")
    print("\nGenerated forward code:\n")
    print(program.forward_source)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graphc", description="A symbolic computational-graph compiler.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="compile the lecture's Recall network and show its values and code")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except GraphcError as error:
        print(f"graphc: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
