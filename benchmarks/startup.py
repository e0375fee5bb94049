#!/usr/bin/env python
"""Start-up time of graphc: fresh interpreters, medians.

Usage::

    python benchmarks/startup.py [--runs 11] [--output benchmarks/results.md]

Each case runs ``--runs`` times in a fresh interpreter, the cases interleaved round-robin
(so a busy moment of the machine touches all of them alike); the wall time of the whole
child process is recorded, and the median reported next to that of a bare interpreter
and of ``import numpy`` in the same run. Targets: ``import graphc`` and ``graphc --help``
within 0.3 s. It also checks that a module written by ``prog.save`` imports numpy and
nothing of graphc, sympy or networkx.

The markdown table is printed and written into ``benchmarks/results.md`` as its
"## Start-up" section (replacing that section if present, else appended).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from compile_time import write_section  # noqa: E402 - the same section writer

HEADING = "## Start-up"
TARGET = 0.3  # seconds

CASES = [  # (label, argv after the interpreter, target)
    ("bare interpreter (`python -c pass`)", ["-c", "pass"], None),
    ("`import numpy`", ["-c", "import numpy"], None),
    ("`import graphc`", ["-c", "import graphc"], TARGET),
    ("`graphc --help`", ["-m", "graphc", "--help"], TARGET),
    ("`import graphc; gc.Graph` (declaring loads sympy, networkx)", ["-c", "import graphc as gc; gc.Graph"], None),
]

SAVED_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("model_gen", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in ("numpy", "graphc", "sympy", "networkx", "pytest", "graphviz")
                        if m in sys.modules)))
"""


def run_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def saved_module_imports() -> list[str]:
    """The modules a saved module loads, run in a fresh interpreter outside the project."""
    from compile_time import build_mlp

    import graphc as gc

    with tempfile.TemporaryDirectory() as folder:
        path = gc.compile(build_mlp(gc)).save(os.path.join(folder, "model_gen.py"))
        done = subprocess.run([sys.executable, "-I", "-c", SAVED_PROBE, str(path)], cwd=folder,
                              capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    head = list(rows[0])
    widths = [max(len(h), *(len(r[h]) for r in rows)) for h in head]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "| " + " | ".join("-" * w for w in widths) + " |"]
    lines += ["| " + " | ".join(r[h].ljust(w) for h, w in zip(head, widths)) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="processes per case (median; default 11)")
    parser.add_argument("--output", default=os.path.join(HERE, "results.md"))
    args = parser.parse_args(argv)

    began = time.perf_counter()
    for _, case_argv, _ in CASES:  # warm the file cache: the first run of each reads from disk
        run_once(case_argv)
    samples: dict[str, list[float]] = {label: [] for label, _, _ in CASES}
    for _ in range(args.runs):
        for label, case_argv, _ in CASES:
            samples[label].append(run_once(case_argv))
    bare = statistics.median(samples[CASES[0][0]])
    rows = []
    for label, _, target in CASES:
        median = statistics.median(samples[label])
        rows.append({"case": label, "median (s)": f"{median:.3f}", "min-max (s)":
                     f"{min(samples[label]):.3f}-{max(samples[label]):.3f}",
                     "over the bare interpreter (s)": f"{median - bare:.3f}",
                     "target (s)": "" if target is None else f"<= {target:g}",
                     "meets target": "" if target is None else ("yes" if median <= target else "NO")})
    saved = saved_module_imports()
    saved_note = ("a module written by `prog.save` (the 784-256-256-10 MLP) imports "
                  + (", ".join(saved) or "nothing") + " of numpy, graphc, sympy, networkx, pytest, graphviz"
                  + (" (numpy only: as it should)" if saved == ["numpy"] else " (NOT numpy only)"))
    elapsed = time.perf_counter() - began
    section = "\n".join([
        HEADING, "",
        f"Produced by `python benchmarks/startup.py --runs {args.runs}` on {time.strftime('%Y-%m-%d %H:%M')}: "
        f"Python {platform.python_version()}, {platform.machine()} with {os.cpu_count()} CPU(s). "
        "Wall time of whole fresh processes (interpreter start included), the cases interleaved; "
        "median of the runs.", "",
        table(rows), "",
        f"- {saved_note}",
        f"- the whole measurement took {elapsed:.0f} s", "",
    ])
    print(section)
    write_section(args.output, section)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
