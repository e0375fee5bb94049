"""``_could_stop()``: whether a floating-point error could stop a step in the middle.

A generated ``sgd_step`` updates each param as soon as nothing reads it (the hand-written
order, and its memory), unless an exception could stop it between two updates: then it
runs ``sgd_step_atomic``, which changes no param before every new value exists. numpy's
arithmetic raises in only two ways: its error state says ``raise`` (or ``call``/``log``,
which hand the error to a function or object that may raise) for some class of error, or
it says ``warn`` and a warnings filter turns the RuntimeWarning into an error. (A
MemoryError or a KeyboardInterrupt can stop any step; no step written by hand or in a
framework guards against them, and neither does this one.)

The answer is worked out once per state and kept: numpy's error state is an immutable
object held in a context variable (a new one whenever ``numpy.seterr`` or ``errstate``
changes it), and the filters list is compared with the copy it was worked out from. That
costs about 0.1 us a call; reading ``numpy.geterr()`` alone costs about 1 us.

>>> namespace = {}
>>> exec("import numpy\\n" + STOPPABLE, namespace)
>>> import numpy, warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("default")
...     quiet = namespace["_could_stop"]()
...     with numpy.errstate(over="raise"):
...         raising = namespace["_could_stop"]()
...     warnings.simplefilter("error", RuntimeWarning)
...     erring = namespace["_could_stop"]()
>>> quiet, raising, erring
(False, True, True)
"""

from __future__ import annotations

__all__ = ["STOPPABLE"]

STOPPABLE = '''
import warnings as _warnings

try:  # numpy's error state: an immutable object, replaced whenever numpy.seterr or errstate changes it
    _error_state = numpy._core._ufunc_config._extobj_contextvar
except AttributeError:  # a numpy without it: the state is read on every call (numpy.geterr, about 1 us)
    _error_state = None
_asked = (None, None, None, False)  # (error state, copy of the filters, default action, answer) last worked out


def _stops(modes, filters, default):
    """Whether an error under numpy's ``modes`` and these warnings filters raises."""
    if {"raise", "call", "log"} & modes:  # call and log hand it to something that may raise
        return True
    if "warn" not in modes:
        return False
    for action, message, category, module, lineno in filters:  # the first filter that matches decides
        if issubclass(RuntimeWarning, category):
            if action == "error":
                return True
            if message is None and module is None and not lineno:  # it takes every RuntimeWarning
                return False
    return default == "error"


def _could_stop():
    """Whether a floating-point error would raise now (so a step could stop midway)."""
    global _asked
    state = _error_state.get() if _error_state is not None else tuple(numpy.geterr().items())
    filters, default = _warnings.filters, _warnings.defaultaction
    asked = _asked
    if asked[0] == state and asked[1] == filters and asked[2] == default:  # the state object: by identity
        return asked[3]
    answer = _stops(set(numpy.geterr().values()), filters, default)
    _asked = (state, list(filters), default, answer)
    return answer
'''
