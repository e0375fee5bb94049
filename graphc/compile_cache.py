"""The compile cache: a second ``gc.compile`` of the same graph in one process is near free.

A compile is keyed by a content hash (:func:`content_key`): the graphc version and a
digest of graphc's own source files, the options, the graph's attributes, its nodes in
order with every attribute, its edges in order (the order breaks ties in the compiler,
so it is part of the content), and the definition of every custom op it uses. Two graphs
with the same key compile to the same program; any change of a const value, a dtype, a
shape, a name or an option changes the key. A graph holding something the key cannot
spell (an object of an unknown type in an attribute, a custom op with a hand-written
lowering) is compiled without the cache.

The cache keeps what the pipeline made (stages, schedule, code) and never hands it out:
each program gets its own copy of every mutable part (graphs, attribute dicts, lists,
arrays; its declared graph, a stage's graph and the schedule are copied when the program
first reads them) and its own loaded module, so changing one program never changes another
or the next compile.

>>> import graphc as gc
>>> g = gc.Graph("doc"); x = g.input("x", shape=(2,)); _ = g.output("y", gc.exp(x))
>>> first, second = gc.compile(g), gc.compile(g)
>>> first is second, first.source == second.source, first.stages["declared"] is second.stages["declared"]
(False, True, False)
"""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
import functools
import gc
import hashlib
import os
from pathlib import Path

import networkx as nx
import numpy as np
import sympy

from . import ir
from .ops.base import OpRegistry

__all__ = ["content_key", "MemoryCache", "fresh_copy", "copier", "MEMORY", "source_digest"]

MAX_ENTRIES = 16  # programs kept in memory (a big graph's stages take tens of MB)


class Uncacheable(Exception):
    """The graph holds something the content key cannot spell: compile it afresh."""


@functools.cache
def source_digest() -> str:
    """A digest of graphc's own source files (its version among them, in __init__.py): a
    changed compiler misses the cache."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# -- the key ---------------------------------------------------------------------------------
def _spell(value, out: list) -> None:
    """Append an unambiguous text for ``value`` (each kind tagged; containers keep order)."""
    kind = type(value)  # the kinds a graph is made of first, by their exact type (as _spelled_as spells them)
    if kind is str:
        out.append(f"s{len(value)}:{value}")
    elif kind is tuple or kind is list:
        out.append(f"{kind.__name__}{len(value)}(")
        for item in value:
            _spell(item, out)
        out.append(")")
    elif kind is dict:
        out.append(f"dict{len(value)}(")
        for key, item in value.items():  # a key, then its value: the count says how many follow
            _spell(key, out)
            _spell(item, out)
        out.append(")")
    elif kind is int:
        out.append(f"i:{value}")
    elif kind is sympy.Symbol:
        out.append(_symbol(value))
    else:
        _spelled_as(value, out)


def _spelled_as(value, out: list) -> None:
    if value is None or isinstance(value, bool):
        out.append(f"k:{value!r}")
    elif isinstance(value, str):
        out.append(f"s{len(value)}:{value}")
    elif isinstance(value, int):
        out.append(f"i:{value}")
    elif isinstance(value, float):
        out.append(f"f:{value.hex()}")  # exact, and -0.0 / nan / inf spelled apart
    elif isinstance(value, complex):
        out.append(f"c:{value.real.hex()},{value.imag.hex()}")
    elif isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        out.append(f"a:{data.dtype.str}:{data.shape}:{hashlib.sha256(data.tobytes()).hexdigest()}")
    elif isinstance(value, np.generic):
        out.append(f"g:{value.dtype.str}:{value.tobytes().hex()}")
    elif isinstance(value, np.dtype):
        out.append(f"d:{value.str}")
    elif isinstance(value, sympy.Basic):
        out.append(f"y:{_srepr(value)}")  # every symbol with its assumptions
    elif isinstance(value, (list, tuple, set, frozenset, dict)):
        kind = type(value).__name__
        if type(value) not in (set, frozenset):  # an exact list, tuple or dict is _spell's; a subclass is not
            raise Uncacheable(f"a {kind}")
        items = sorted(value, key=_spelled)
        out.append(f"{kind}{len(items)}(")
        for item in items:
            _spell(item, out)
        out.append(")")
    else:
        raise Uncacheable(f"a {type(value).__name__}")


@functools.lru_cache(maxsize=4096)
def _srepr(value: sympy.Basic) -> str:
    return sympy.srepr(value)  # equal expressions have one srepr: shapes repeat one symbol a thousand times


_SYMBOLS: dict[int, tuple[sympy.Symbol, str]] = {}  # id -> (the symbol, kept alive so its id stays its own; text)


def _symbol(value: sympy.Symbol) -> str:
    """A symbol's text, looked up by identity: a shape's dims are a few symbol objects met
    thousands of times, and sympy hashes a symbol in Python (the lru_cache's key)."""
    entry = _SYMBOLS.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    if len(_SYMBOLS) >= 4096:
        _SYMBOLS.clear()
    text = f"y:{_srepr(value)}"
    _SYMBOLS[id(value)] = (value, text)
    return text


def _spelled(value) -> str:
    out: list[str] = []
    _spell(value, out)
    return "\x1f".join(out)


def _custom_op(op) -> tuple:
    """What a custom op is, for the key: its facets and its definition over its symbols."""
    if any(getattr(op, facet) is not None for facet in ("lower", "expand", "vjp", "reference", "convention")):
        raise Uncacheable(f"custom op {op.name!r} has hand-written rules")
    if op.fn is None:
        raise Uncacheable(f"custom op {op.name!r} has no definition")
    from .ops.base import arg_symbols

    arity = max(op.arity, 0)
    return (op.name, op.arity, op.elementwise, op.commutative, op.algebraic, op.kink, op.attrs,
            op.fn(*arg_symbols(arity)) if not op.attrs else None, op.dtype is None, op.int_operands)


def content_key(graph: nx.MultiDiGraph, options: dict) -> str:
    """The sha256 of the graph's content and the options (raises Uncacheable)."""
    out: list[str] = ["graphc", source_digest()]
    _spell(sorted(options.items()), out)
    attrs = dict(graph.graph)
    registry = attrs.pop(ir.CUSTOM_OPS, None) or {}  # the graph's own ops: spelled by what they are
    _spell(attrs, out)
    if type(graph) is nx.MultiDiGraph:
        _spell_nodes(graph._node, out)
        _spell_edges(graph._succ, out)
    else:
        for node, data in graph.nodes(data=True):
            _spell(node, out)
            _spell(dict(data), out)
        for source, target, key, data in graph.edges(keys=True, data=True):
            _spell((source, target, key), out)
            _spell(dict(data), out)
    for name in sorted(registry):
        _spell(_custom_op(registry[name]), out)
    return hashlib.sha256(_JOIN.join(out).encode("utf-8", "surrogatepass")).hexdigest()


_USUAL = (ir.OP, ir.ATTRS, ir.SHAPE, ir.DTYPE)  # a declared node's keys, in the builder's order


def _spell_nodes(nodes: dict, out: list) -> None:
    """Each node, then its attribute dict: what ``_spell`` writes for them, with the kinds a
    node holds (names, attrs, a shape of ints and symbols) written here instead of through a
    call per value (the key was a twentieth of compiling a big graph). A declared node
    without attrs is its name and one text shared by every node of its op, dtype and shape
    objects (the same objects: each spelled alike), joined into one token."""
    append = out.append
    usual: dict[tuple, str] = {}  # (op, dtype, id of each dim) -> the text after the name
    for node, data in nodes.items():
        if type(node) is str:
            if len(data) == 4:
                op, attrs, shape, dtype = data.values()
                if (type(op) is str and type(dtype) is str and type(attrs) is dict and not attrs
                        and type(shape) is tuple and tuple(data) == _USUAL):
                    # ids are those of objects the graph holds while the key is spelled
                    rest = usual.get(alike := (op, dtype, *map(id, shape)))
                    if rest is None:
                        rest = usual[alike] = _usual_node(op, shape, dtype)
                    append(f"s{len(node)}:{node}{rest}")
                    continue
            append(f"s{len(node)}:{node}")
        else:
            _spell(node, out)
        append(f"dict{len(data)}(")
        for key, value in data.items():
            if type(key) is str:
                append(f"s{len(key)}:{key}")
            else:
                _spell(key, out)
            kind = type(value)
            if kind is str:
                append(f"s{len(value)}:{value}")
            elif kind is tuple:
                append(f"tuple{len(value)}(")
                for dim in value:
                    if type(dim) is int:
                        append(f"i:{dim}")
                    elif type(dim) is sympy.Symbol:
                        append(_symbol(dim))
                    else:
                        _spell(dim, out)
                append(")")
            elif kind is dict and not value:
                append("dict0(")
                append(")")
            else:
                _spell(value, out)
        append(")")


def _usual_node(op: str, shape: tuple, dtype: str) -> str:
    """The tokens ``_spell`` writes for ``{op, attrs: {}, shape, dtype}``, each led by the join."""
    tokens = [f"dict{len(_USUAL)}("]
    for key, value in zip(_USUAL, (op, {}, shape, dtype)):
        _spell(key, tokens)
        _spell(value, tokens)
    tokens.append(")")
    return "".join(_JOIN + token for token in tokens)


_JOIN = "\x1e"  # between the key's tokens
_ARG_DATA = f"dict1({_JOIN}s{len(ir.ARG)}:{ir.ARG}"  # an edge's data {"arg": k}, up to its value


def _spell_edges(succ: dict, out: list) -> None:
    """Each edge as ``_spell`` writes (source, target, key) and its data dict, the usual edge
    (names, an int key, data ``{"arg": int}``) in one string: the same tokens, joined here."""
    append = out.append
    for source, targets in succ.items():
        for target, keys in targets.items():
            for key, data in keys.items():
                if type(source) is str and type(target) is str and type(key) is int and len(data) == 1:
                    (name, arg), = data.items()
                    if name == ir.ARG and type(name) is str and type(arg) is int:
                        append(f"tuple3({_JOIN}s{len(source)}:{source}{_JOIN}s{len(target)}:{target}{_JOIN}"
                               f"i:{key}{_JOIN}){_JOIN}{_ARG_DATA}{_JOIN}i:{arg}{_JOIN})")
                        continue
                _spell((source, target, key), out)
                _spell(dict(data), out)


# -- copies that share nothing mutable -------------------------------------------------------
_SCALARS = frozenset({str, int, float, complex, bool, bytes, type(None)})
_SHARED = (sympy.Basic, np.generic, np.dtype, type, functools.partial, OpRegistry)  # immutable: shared by copies


def fresh_copy(value, memo: dict | None = None):
    """A copy of ``value`` sharing no mutable part with it (sympy expressions, numbers and
    strings are shared: they are immutable). Graphs, dicts, lists, sets, arrays and
    dataclasses are copied, and what was one object in ``value`` is one object in the copy;
    an immutable part comes back as itself (a frozen plan of tuples costs nothing)."""
    if type(value) in _SCALARS:
        return value
    memo = {} if memo is None else memo
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, _SHARED):
        return value
    kind = type(value)
    if kind is tuple or kind is frozenset:
        if all(type(v) in _SCALARS or isinstance(v, _SHARED) for v in value):
            return value  # a shape, a tuple of names
        items = [fresh_copy(v, memo) for v in value]
        copy = value if all(a is b for a, b in zip(items, value)) else kind(items)
    elif isinstance(value, nx.MultiDiGraph):
        copy = memo[key] = _fresh_graph(value, memo)
    elif kind is dict:
        copy = memo[key] = {}
        copy.update({k: fresh_copy(v, memo) for k, v in value.items()})
    elif kind is list:
        copy = memo[key] = []
        copy.extend(fresh_copy(v, memo) for v in value)
    elif kind is set:
        copy = set(value)  # members are hashable, immutable in practice
    elif isinstance(value, np.ndarray):
        copy = value.copy()
        copy.flags.writeable = value.flags.writeable
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {name: getattr(value, name) for name in _field_names(kind)}
        fresh = {name: item if _plain(item) else fresh_copy(item, memo) for name, item in fields.items()}
        if all(fresh[name] is item for name, item in fields.items()):
            copy = value  # nothing mutable in it (the schedule's frozen plans)
        else:
            copy = object.__new__(kind)
            for name, item in fresh.items():
                object.__setattr__(copy, name, item)
    elif callable(value):
        return value
    else:
        import copy as copying

        copy = copying.deepcopy(value, memo)
    memo[key] = copy
    return copy


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind))


_ATOMS = _SCALARS | {sympy.Symbol}  # what a shape holds


def _plain(item) -> bool:
    """Immutable at a glance: a number, a name, or a tuple or frozenset of them (no call each)."""
    kind = type(item)
    return kind in _SCALARS or (kind is tuple or kind is frozenset) and _ATOMS.issuperset(map(type, item))


def _fresh_data(data: dict, memo: dict) -> dict:
    """A node's or an edge's attribute dict, fresh; the usual values without a call each
    (the kinds a declared node holds tested first: a name, a shape, attrs)."""
    copy = data.copy()
    for name, item in data.items():
        kind = type(item)
        if kind is str:
            continue
        if kind is tuple:
            if _ATOMS.issuperset(map(type, item)):
                continue  # a shape
        elif kind is dict:
            if not item or _SCALARS.issuperset(map(type, item.values())):
                copy[name] = item.copy()  # attrs of numbers and names
                continue
        elif kind in _SCALARS:
            continue  # a number
        elif kind is frozenset and _ATOMS.issuperset(map(type, item)):
            continue
        copy[name] = fresh_copy(item, memo)
    return copy


def _fresh_keys(keys: dict, memo: dict) -> dict:
    """The dict of one node pair's edges (key -> data), fresh: data of numbers alone (the
    operand position) copied as it is."""
    return {key: data.copy() if _SCALARS.issuperset(map(type, data.values())) else _fresh_data(data, memo)
            for key, data in keys.items()}


def _fresh_graph(graph: nx.MultiDiGraph, memo: dict) -> nx.MultiDiGraph:
    """``ir.copy_graph`` (networkx's node, edge and key order) with every attribute value fresh."""
    if type(graph) is not nx.MultiDiGraph:
        out = ir.copy_graph(graph)
        for data in out._node.values():
            data.update(_fresh_data(data, memo))
        return out
    out = nx.MultiDiGraph()
    nodes = {node: _fresh_data(data, memo) for node, data in graph._node.items()}
    succ: dict = {node: {} for node in nodes}
    pred: dict = {node: {} for node in nodes}
    for source, targets in graph._succ.items():
        out_edges = succ[source]
        for target, keys in targets.items():
            if len(keys) == 1:  # the usual pair: one edge, its data the operand position (no call)
                for key, data in keys.items():
                    copy = {key: data.copy() if _SCALARS.issuperset(map(type, data.values()))
                            else _fresh_data(data, memo)}
            else:
                copy = _fresh_keys(keys, memo)
            out_edges[target] = pred[target][source] = copy
    out._node, out._adj, out._pred = nodes, succ, pred
    out._succ = succ
    out.graph = {k: fresh_copy(v, memo) for k, v in graph.graph.items()}
    return out


def _copying(value, memo: dict):
    """``fresh_copy(value, memo)`` with the cyclic collector paused, as gc.compile pauses it:
    a copy makes many objects that all live on."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return fresh_copy(value, memo)
    finally:
        if collecting:
            gc.enable()


def copier(value, memo: dict | None = None) -> functools.partial:
    """A function making ``fresh_copy(value)`` when first called (the collector paused), and
    handing that same copy back after: a program's graph copied when first read."""
    return functools.partial(_copying, value, {} if memo is None else memo)


class LazyStages(collections.abc.Mapping):
    """A program's stages, each graph copied from the cached one when first looked at
    (most programs are run, and only a few of their stages ever read): one memo for all,
    so a graph that is two things (the declared stage and ``prog.graph``) stays one."""

    def __init__(self, stages: dict, memo: dict):
        self._stages, self._memo, self._copies = stages, memo, {}

    def __getitem__(self, name: str):
        if name not in self._copies:
            self._copies[name] = _copying(self._stages[name], self._memo)
        return self._copies[name]

    def __iter__(self):
        return iter(self._stages)

    def __len__(self) -> int:
        return len(self._stages)

    def __reversed__(self):
        return reversed(self._stages)

    # reversible views, as a dict's are
    def keys(self):
        return _Keys(self)

    def values(self):
        return _Values(self)

    def items(self):
        return _Items(self)

    def __repr__(self) -> str:
        return f"LazyStages({list(self._stages)})"


class _Keys(collections.abc.KeysView):
    def __reversed__(self):
        return reversed(self._mapping)


class _Values(collections.abc.ValuesView):
    def __reversed__(self):
        return (self._mapping[key] for key in reversed(self._mapping))


class _Items(collections.abc.ItemsView):
    def __reversed__(self):
        return ((key, self._mapping[key]) for key in reversed(self._mapping))


def lent(entry: dict) -> dict:
    """Program arguments from a cache entry, sharing nothing mutable with it: the program's
    graph (``prog.graph``), its schedule and each stage copied when first read (functions
    making the copies: running a program reads none of them, and the declared graph's copy
    and the schedule's three graphs were most of a compile's copying). The program's own
    checks read the entry's declared graph, which nothing changes. One memo for all, so
    that ``prog.plan.joint`` is ``prog.stages["scheduled"]`` and ``prog.graph`` is
    ``prog.stages["declared"]``, as in a fresh compile."""
    memo: dict = {}
    stages = LazyStages(entry["stages"], memo)
    memo[id(entry["stages"])] = stages
    inference = memo.get(id(entry["inference_stages"]))  # (not `or`: a mapping's truth reads its length)
    if inference is None:
        inference = LazyStages(entry["inference_stages"], memo)
    return {**entry, "graph": copier(entry["declared"], memo), "plan": copier(entry["plan"], memo),
            "stages": stages, "inference_stages": inference, "wrt": list(entry["wrt"])}


# -- the in-memory cache ---------------------------------------------------------------------
class MemoryCache:
    """The last MAX_ENTRIES compiles by content key, each as the pipeline left it."""

    def __init__(self, size: int = MAX_ENTRIES):
        self.size = size
        self.entries: collections.OrderedDict[str, object] = collections.OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: str):
        """The entry itself: never hand it out, hand out :func:`lent` copies of it."""
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: str, entry) -> None:
        """Keep ``entry``; from now on nothing but :func:`lent` copies of it may leave."""
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()
        self.hits = self.misses = 0


MEMORY = MemoryCache()


def enabled() -> bool:
    """The cache is on unless ``GRAPHC_NO_CACHE`` is set (to anything but "" or "0")."""
    return os.environ.get("GRAPHC_NO_CACHE", "") in ("", "0")
