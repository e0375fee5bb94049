"""Refresh the generated parts of README.md: the gradient code and the benchmark table.

    python3 docs/make_readme.py           # rewrite them in place
    python3 docs/make_readme.py --check   # exit 1 when the gradient code shown is stale

The gradient code is the backward function that the README's own fifteen-line example
compiles to, so the page shows what graphc prints today (the tests run ``--check``). The
benchmark table is copied from benchmarks/results.md, which ``python benchmarks/run.py``
writes: timings are measured, not derived, so only the code is checked.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import graphc as gc  # noqa: E402

README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results.md"
CODE = ("<!-- generated: backward code -->", "<!-- end: backward code -->")
TABLE = ("<!-- generated: benchmark table -->", "<!-- end: benchmark table -->")


def example_program() -> gc.Program:
    """The README's fifteen-line example, compiled."""
    g = gc.Graph("wide")
    x, y = g.input("x", shape=("N", 1)), g.input("y", shape=("N", 1))
    W1, W2 = g.param("W1", shape=(1, 3)), g.param("W2", shape=(3, 1))
    a1 = gc.relu((x @ W1).named("z1")).named("a1")
    z2 = (a1 @ W2).named("z2")
    g.output("loss", gc.mse(gc.relu(z2), y))
    return gc.compile(g)


def backward_block() -> str:
    source = example_program().backward_source
    backward = source[source.index("def backward_pass"):]
    backward = backward.split("\n\n\ndef ")[0].rstrip()  # backward_pass alone, not sgd_step
    return f"```python\n{backward}\n```"


def benchmark_block() -> str:
    """The machine notes and the first table of benchmarks/results.md (the step timings)."""
    lines = RESULTS.read_text(encoding="utf-8").splitlines()
    notes = [line for line in lines if line.startswith(("- Python", "- BLAS", "- float64", "- Load"))]
    first = next(k for k, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(notes + [""] + table)


def replace(text: str, markers: tuple[str, str], body: str) -> str:
    start, end = markers
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md lacks the markers {start} ... {end}")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the code shown is stale")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    fresh = replace(text, CODE, backward_block())
    if args.check:
        if fresh != text:
            print("README.md shows stale gradient code: run python3 docs/make_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(replace(fresh, TABLE, benchmark_block()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
