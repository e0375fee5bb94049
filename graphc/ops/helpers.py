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


# a call of a name starting with "_" (every helper's does): one scan of the code finds them
# all, where a search per helper read a big module's megabytes once per helper
_CALL = re.compile(r"\b(_\w*)\(")


def _calls(code: str, table: dict[str, str]) -> set[str]:
    return set(_CALL.findall(code)) & table.keys()


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
