"""The numpy helpers a generated module may carry: functions numpy lacks, written in numpy.

An op whose numpy form is a call of a helper (``_erf(x)``, ``_conv2d_matmul(p, w, ...)``)
registers the helper's function here; lowering copies the source of each helper the
module's code calls (and of the helpers those call) into the module, which so still needs
numpy only. A helper is written as generated code is: it names ``numpy`` in full.
"""

from __future__ import annotations

import inspect
import re

__all__ = ["HELPERS", "helper", "sources_called"]

HELPERS: dict[str, str] = {}  # name -> source


def helper(function):
    """Register ``function`` (whose name starts with ``_``) as a helper; returns it unchanged."""
    assert function.__name__.startswith("_"), function.__name__
    lines = inspect.getsource(function).rstrip("\n").splitlines()
    while lines[0].startswith("@"):  # the module defines it plainly
        lines.pop(0)
    HELPERS[function.__name__] = "\n".join(lines) + "\n"
    return function


def _calls(code: str) -> set[str]:
    return {name for name in HELPERS if re.search(rf"\b{name}\(", code)}


def sources_called(code: str) -> list[str]:
    """The sources of the helpers ``code`` calls, directly or through other helpers, by name."""
    wanted = _calls(code)
    while True:
        more = set().union(*(_calls(HELPERS[name]) for name in wanted)) - wanted
        if not more:
            return [HELPERS[name] for name in sorted(wanted)]
        wanted |= more
