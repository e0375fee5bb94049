"""Check what a program is called with before anything runs: feeds, step sizes, seeds."""

from __future__ import annotations

import functools
import math
import numbers
import operator
import weakref
from collections.abc import Callable, Mapping, Sequence

import networkx as nx
import numpy as np
import sympy

from . import ir, shapes
from .errors import FeedError

__all__ = ["check_feeds", "FeedChecker", "check_step_size", "check_seed"]


class FeedChecker:
    """``check_feeds`` for one graph, with a fast path for well-formed feeds.

    Training loops check feeds on every step. The full check runs once per shape
    signature (the tuple of the feeds' shapes): when the dict holds exactly the declared
    names, each an array of its declared dtype, and their shapes are a signature that
    passed before, the arrays are returned as they are. Anything else takes the full
    check, which explains what is wrong.

    The call with the last call's shapes is the one a loop makes: it costs one lookup of
    every name at once and one comparison of each feed's type, dtype and shape with the
    last call's (:func:`_matcher`), allocating nothing but the tuple of arrays it returns.
    An array whose shape or dtype changed in place since (``a.shape = ...``) fails that
    comparison and takes the full check like any other.
    """

    KNOWN = 64  # signatures remembered (a training loop has one or two: full and last batch)

    def __init__(self, graph: nx.MultiDiGraph):
        self.graph = graph
        self.names = ir.sources(graph)
        nodes = graph._node  # the node dicts themselves, each dtype made once: a big net has thousands of params
        dtypes = {name: nodes[name][ir.DTYPE] for name in self.names}
        made = {dtype: np.dtype(dtype) for dtype in set(dtypes.values())}
        self.dtypes = [made[dtypes[name]] for name in self.names]
        self.known: set[tuple] = set()  # shape signatures that passed the full check
        self.last: tuple = (None,) * len(self.names)  # the signature of the last good feeds
        self.pick = _picker(self.names)  # feeds -> their arrays in order, or KeyError
        self._count = len(self.names)
        # feeds -> their arrays when they have the last call's signature, else None (or KeyError)
        self._match = _matcher(self.pick, self.dtypes, self.last)

    def __call__(self, feeds: Mapping) -> list[np.ndarray] | tuple[np.ndarray, ...]:
        if type(feeds) is not dict or len(feeds) != self._count:
            return check_feeds(self.graph, feeds)
        try:
            values = self._match(feeds)
        except KeyError:
            return check_feeds(self.graph, feeds)
        if values is not None:  # the signature of the last call
            return values
        return self._checked(feeds, self.pick(feeds))

    def _checked(self, feeds: dict, values: tuple) -> list[np.ndarray] | tuple[np.ndarray, ...]:
        """The feeds of a signature other than the last call's (or of an equal, not the same, dtype)."""
        if any(type(v) is not np.ndarray or v.dtype != d for v, d in zip(values, self.dtypes)):
            return check_feeds(self.graph, feeds)
        signature = tuple([v.shape for v in values])
        if signature not in self.known:
            values = check_feeds(self.graph, feeds)  # raises, or returns the same arrays
            if len(self.known) >= self.KNOWN:
                self.known.clear()
            self.known.add(signature)
        self.last = signature
        self._match = _matcher(self.pick, [v.dtype for v in values], signature)
        return values


def _picker(names: list[str]):
    """``feeds -> (feeds[n] for n in names)`` as one tuple, in one C call (itemgetter)."""
    if len(names) == 1:
        (name,) = names
        return lambda feeds: (feeds[name],)
    if not names:
        return lambda feeds: ()
    return operator.itemgetter(*names)


UNROLLED = 64  # feeds compared by one generated expression; more are compared in a loop


def _matcher(pick, dtypes: list, signature: tuple):
    """``feeds -> pick(feeds)`` when each array is an ndarray of exactly its dtype in ``dtypes``
    and its shape in ``signature``, else None (KeyError when a name is missing).

    Up to UNROLLED feeds, the comparison is one ``and`` of three tests per feed, with the
    expected values bound as the function's own variables: a loop over (dtype, shape) pairs
    costs a third more per call (0.91 against 0.68 us for six feeds, numpy 2.4).
    """
    if not dtypes:
        return pick
    if len(dtypes) > UNROLLED:
        expected = tuple(zip(dtypes, signature))

        def match(feeds):
            values = pick(feeds)
            for value, (dtype, shape) in zip(values, expected):  # allocates nothing
                if type(value) is not np.ndarray or value.dtype is not dtype or value.shape != shape:
                    return None
            return values

        return match
    return _unrolled(len(dtypes))(pick, np.ndarray, *[x for pair in zip(dtypes, signature) for x in pair])


@functools.cache
def _unrolled(count: int):
    """``make(pick, ndarray, d0, s0, d1, s1, ...) -> match``: the matcher of ``count`` feeds.

    Its source is made of positions alone (``a0``, ``d0``, ``s0``): no feed name or value
    is ever part of it, and it is compiled once per count.
    """
    arrays = ", ".join(f"a{k}" for k in range(count))
    test = " and ".join(f"type(a{k}) is ndarray and a{k}.dtype is d{k} and a{k}.shape == s{k}" for k in range(count))
    expected = ", ".join(f"d{k}, s{k}" for k in range(count))
    source = (f"def make(pick, ndarray, {expected}):\n"
              f"    def match(feeds):\n"
              f"        values = pick(feeds)\n"
              f"        {arrays}, = values\n"
              f"        return values if {test} else None\n"
              f"    return match\n")
    return positional_function(source, f"the feed check of {count} feeds")


def no_step_check(feeds: Mapping) -> None:
    """The step check before any step passed the full checks: every call takes them."""
    return None


def step_check(pick, params: Sequence[int], arrays: Sequence[np.ndarray]) -> Callable:
    """``feeds -> arrays`` when a call of ``sgd_step`` is the checked one again, else None.

    ``arrays`` passed the full checks of a step that updates them where they are
    (``Program._step_for``): the feeds' types, dtypes and shapes (``signature``), each param
    (at the positions ``params``) writable, the caller's own array and overlapping no other;
    ``pick`` takes them out of the feeds, in order.
    The same call again needs none of it worked out anew. What the returned check compares
    on every call is what could have changed since: each feed's type, dtype and shape (a
    shape or dtype can be assigned in place), each param being the same object (held by a
    weak reference: the check keeps no array alive, and a param that was freed matches
    nothing) and still writable, and each input's memory lying outside every param's buffer
    (an input is a new array each call; the one it is a view of is its buffer). Overlap
    between params needs no new look: an array's buffer (``base``) is fixed for its life.
    None sends the call through the full checks, which also explain what is wrong.
    """
    params = frozenset(params)
    roots = frozenset(id(arrays[k] if arrays[k].base is None else arrays[k].base) for k in params)
    bound = []
    for k, array in enumerate(arrays):  # the arrays' own dtype objects: the check compares by identity
        bound += [array.dtype, array.shape, weakref.ref(array) if k in params else None]
    kinds = tuple(k in params for k in range(len(arrays)))
    return _unrolled_step_check(kinds)(pick, len(arrays), np.ndarray, roots, *bound)


STEP_UNROLLED = 512  # feeds one step check compares; a step of more takes the full checks each call


@functools.cache
def _unrolled_step_check(kinds: tuple[bool, ...]) -> Callable:
    """``make(pick, count, ndarray, roots, d0, s0, r0, d1, ...) -> check``: the step check of feeds
    whose positions ``kinds`` marks True for a param (``r0``, a weak reference to it) and False
    for an input. Positions alone, as :func:`_unrolled`; compiled once per pattern."""
    tests = []
    for k, param in enumerate(kinds):
        if param:
            tests.append(f"a{k} is r{k}() and a{k}.dtype is d{k} and a{k}.shape == s{k} and a{k}.flags.writeable")
        else:
            tests.append(f"type(a{k}) is ndarray and a{k}.dtype is d{k} and a{k}.shape == s{k}"
                         f" and id(a{k} if a{k}.base is None else a{k}.base) not in roots")
    arrays = ", ".join(f"a{k}" for k in range(len(kinds)))
    expected = ", ".join(f"d{k}, s{k}, r{k}" for k in range(len(kinds)))
    test = "\n                and ".join(tests)
    source = (f"def make(pick, count, ndarray, roots, {expected}):\n"
              f"    def check(feeds):\n"
              f"        if type(feeds) is not dict or len(feeds) != count:\n"
              f"            return None\n"
              f"        try:\n"
              f"            values = pick(feeds)\n"
              f"        except KeyError:\n"
              f"            return None\n"
              f"        {arrays}, = values\n"
              f"        return values if ({test}) else None\n"
              f"    return check\n")
    return positional_function(source, f"the step check of {len(kinds)} feeds")


def positional_function(source: str, what: str) -> Callable:
    """The function ``make`` that ``source`` defines, compiled as ``<graphc: what>``.

    The one place the package compiles Python it printed itself at run time (the fast
    paths of repeated calls: :func:`_unrolled`, ``program._unrolled_keyer``). Its callers
    print sources of positions alone (``a0``, ``k0``), like ``collections.namedtuple``:
    no name or value from a graph is ever part of them, so no graph file can run code here.
    """
    namespace: dict = {}
    exec(compile(source, f"<graphc: {what}>", "exec"), namespace)  # noqa: S102
    return namespace["make"]


def check_feeds(graph: nx.MultiDiGraph, feeds: Mapping, names: list[str] | None = None) -> list[np.ndarray]:
    """The feeds as arrays in ``names`` order (default: inputs then params), or a FeedError.

    Missing and unexpected names, wrong rank, wrong dims, symbolic dims bound to two
    different sizes, and non-real dtypes are each reported naming the feed.
    """
    if not isinstance(feeds, Mapping):
        raise FeedError(f"feeds must be a dict of name -> array, found {type(feeds).__name__}")
    names = ir.sources(graph) if names is None else names
    declared = set(ir.sources(graph))
    missing = [n for n in names if n not in feeds]
    if missing:
        n = missing[0]
        data = graph.nodes[n]
        raise FeedError(
            f"missing feed {n!r} ({data[ir.OP]} of shape {shapes.fmt(data[ir.SHAPE])}); "
            f"pass every one of {sorted(names)!r}"
        )
    extra = sorted((k for k in feeds if k not in declared), key=str)
    if extra:
        raise FeedError(
            f"unexpected feed {extra[0]!r}: graph {graph.graph[ir.NAME]!r} has no input or param of that "
            f"name; its feeds are {sorted(declared)!r}"
        )
    bound: dict[sympy.Symbol, tuple[int, str]] = {}
    arrays = []
    for n in names:
        arrays.append(_check_one(graph, n, feeds[n], bound))
    return arrays


def _check_one(graph, name, value, bound) -> np.ndarray:
    data = graph.nodes[name]
    declared, dtype = data[ir.SHAPE], data[ir.DTYPE]
    try:
        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001 - numpy raises several kinds
        raise FeedError(f"feed {name!r} is not array-like: {error}") from None
    if array.dtype.kind not in "biuf":
        raise FeedError(
            f"feed {name!r} has dtype {array.dtype}, expected real numbers ({dtype}); "
            "convert it with numpy.asarray(value, dtype=float)"
        )
    if array.ndim != len(declared):
        raise FeedError(
            f"feed {name!r} has rank {array.ndim} (shape {array.shape}), expected rank {len(declared)} "
            f"(shape {shapes.fmt(declared)})"
        )
    for axis, (want, got) in enumerate(zip(declared, array.shape)):
        if isinstance(want, sympy.Symbol):
            if got < 1:
                raise FeedError(
                    f"feed {name!r}: dim {want} (axis {axis}) is {got}, but a symbolic dim is a positive size "
                    "(an empty batch has no mean); feed at least one row"
                )
            if want in bound and bound[want][0] != got:
                size, other = bound[want]
                raise FeedError(
                    f"feed {name!r}: dim {want} (axis {axis}) is {got}, but feed {other!r} set {want} = {size}; "
                    "every use of a symbolic dim must have one size"
                )
            bound[want] = (got, name)
        elif want != got:
            raise FeedError(
                f"feed {name!r} has shape {array.shape}, expected {shapes.fmt(declared)} "
                f"(axis {axis}: expected {want}, found {got})"
            )
    if np.dtype(dtype).kind in "iu" and array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
        raise FeedError(f"feed {name!r} is declared {dtype} (class labels) but holds non-integral values; "
                        "feed whole numbers, e.g. numpy.asarray(labels, dtype=numpy.int64)")
    return array.astype(dtype, copy=False)


def check_step_size(lr: object) -> float:
    """``lr`` as a Python float (which keeps a float32 step float32), or a FeedError.

    A real, finite number, or a 0-d real array; a str, None, a bool, a list, an array of
    several numbers, NaN or an infinity is refused before anything is updated.

    >>> check_step_size(0.1)
    0.1
    >>> check_step_size("0.1")
    Traceback (most recent call last):
    ...
    graphc.errors.FeedError: lr must be a real number (a Python or numpy scalar), found str; ...
    """
    if type(lr) is float and math.isfinite(lr):  # the usual case, checked in a fraction of the full test's time
        return lr
    value = lr.item() if isinstance(lr, np.ndarray) and lr.ndim == 0 else lr
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        found = f"an array of shape {lr.shape}" if isinstance(lr, np.ndarray) else type(lr).__name__
        raise FeedError(f"lr must be a real number (a Python or numpy scalar), found {found}; "
                        "pass the learning rate as a float")
    if not np.isfinite(value):
        raise FeedError(f"lr must be a finite real number, found {value!r}; pass the learning rate as a float")
    return float(value)


def check_seed(seed: object, shape: tuple, target: str, dtype: str = "float64") -> np.ndarray:
    """``seed``, the cotangent of output ``target``, as an array of the output's shape and dtype."""
    try:
        array = np.asarray(seed)
    except Exception as error:  # noqa: BLE001 - numpy raises several kinds
        raise FeedError(f"seed (the cotangent of output {target!r}) is not an array of numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        raise FeedError(
            f"seed (the cotangent of output {target!r}) is not an array of numbers: it has dtype {array.dtype}; "
            "pass numpy.asarray(value, dtype=float)"
        )
    if array.shape != tuple(shape):
        raise FeedError(
            f"seed (the cotangent of output {target!r}) has shape {array.shape}, expected {tuple(shape)}: "
            "the output's shape"
        )
    return array.astype(dtype, copy=False)
