"""The helpers a generated module may carry: functions its library lacks, written in it.

An op whose numpy form is a call of a helper (``_erf(x)``, ``_conv2d_matmul(p, w, ...)``)
registers the helper's function here; lowering copies the source of each helper the
module's code calls (and of the helpers those call) into the module, which so still needs
numpy only. A helper is written as generated code is: it names ``numpy`` in full.

A module printed for the array API standard calls the same names, and carries their
twins written over ``xp`` alone (``XP_HELPERS``, registered with :func:`xp_helper`;
``ops/xp_windows.py``, ``ops/xp_special.py``): the op table's call text serves both.
"""

from __future__ import annotations

import inspect
import re

__all__ = ["HELPERS", "XP_HELPERS", "helper", "xp_helper", "sources_called"]

HELPERS: dict[str, str] = {}  # name -> source, in numpy
XP_HELPERS: dict[str, str] = {}  # name -> source, over the array API namespace xp


def _registered(function, table: dict[str, str]):
    assert function.__name__.startswith("_"), function.__name__
    lines = inspect.getsource(function).rstrip("\n").splitlines()
    while lines[0].startswith("@"):  # the module defines it plainly
        lines.pop(0)
    table[function.__name__] = "\n".join(lines) + "\n"
    return function


def helper(function):
    """Register ``function`` (whose name starts with ``_``) as a numpy helper; returns it unchanged."""
    return _registered(function, HELPERS)


def xp_helper(function):
    """Register ``function`` as an array-API helper (it calls ``xp.*`` only); returns it unchanged."""
    return _registered(function, XP_HELPERS)


def _calls(code: str, table: dict[str, str]) -> set[str]:
    """The helpers of ``table`` that ``code`` calls (``_erf(``, after no letter, digit or ``_``).

    A substring search per helper (a fast scan in C) rules out nearly every helper, and only
    a name found so is looked for again as a call: on a 5,000-node chain's 1.7 MB module the
    fifteen numpy helpers cost 8 ms, where one regex scan for every ``_name(`` cost 49 ms."""
    return {name for name in table if name + "(" in code and re.search(rf"\b{re.escape(name)}\(", code)}


def sources_called(code: str, table: dict[str, str] | None = None) -> list[str]:
    """The sources of the helpers ``code`` calls, directly or through other helpers, by name,
    from ``table`` (numpy's ``HELPERS`` unless told)."""
    table = HELPERS if table is None else table
    wanted = _calls(code, table)
    while True:
        more = set().union(*(_calls(table[name], table) for name in wanted)) - wanted
        if not more:
            return [table[name] for name in sorted(wanted)]
        wanted |= more
