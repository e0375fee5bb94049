"""One namespace object turns any node name into a legal, unique, deterministic identifier.

Names never reach generated code unescaped: a name is reduced to ASCII letters, digits and
underscores, kept clear of keywords, builtins and the module's own names, and made unique
by a numeric suffix in the order names are asked for.

>>> ns = Namespace()
>>> ns.name("h1"), ns.name("a\\"; import os"), ns.name("class"), ns.name("h1.x"), ns.name("h1_x")
('h1', 'a_import_os', 'class_', 'h1_x', 'h1_x_1')
"""

from __future__ import annotations

import builtins
import keyword
import re

from ..ops.helpers import HELPERS, XP_HELPERS

__all__ = ["Namespace", "RESERVED"]

RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {
    "numpy", "forward", "backward", "forward_pass", "backward_pass", "train_forward",
    # backward_update: the updating backward pass of modules printed before backward_pass took
    # ``update``; still no value's name, so values keep their identifiers and a module never
    # binds that name to something else
    "value_and_grad", "sgd_step", "sgd_step_atomic", "backward_update", "forward_backward", "INPUTS", "PARAMS",
    "OUTPUTS", "GRADS", "DTYPES", "TARGET",
    "seed", "lr", "saved", "outputs", "update",  # the generated functions' own arguments and locals
    "sigmoid", "softplus",  # functions the formula comments name (a value called sigmoid is sigmoid_)
    "_unpack", "_base64",  # the module's own helpers
} | frozenset(HELPERS) | frozenset(XP_HELPERS)  # the helpers a module may carry (ops/helpers.py)

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


class Namespace:
    """Hands out identifiers: the same key always gets the same name."""

    def __init__(self, reserved: frozenset[str] = RESERVED):
        self._reserved = set(reserved)
        self._taken: set[str] = set()
        self._by_key: dict[object, str] = {}

    def name(self, key: object, hint: str | None = None) -> str:
        """The identifier of ``key`` (a node id, a symbol...), made from ``hint`` or the key."""
        found = self._by_key.get(key)
        if found is not None:
            return found
        base = _UNSAFE.sub("_", str(key if hint is None else hint)).strip("_") or "v"
        if base[0].isdigit():
            base = "v" + base
        if base in self._reserved:
            base += "_"
        candidate, k = base, 0
        while candidate in self._taken or candidate in self._reserved:
            k += 1
            candidate = f"{base}_{k}"
        self._taken.add(candidate)
        self._by_key[key] = candidate
        return candidate

    def bind(self, key: object, identifier: str) -> str:
        """Give ``key`` exactly ``identifier``, a name kept out of :meth:`name`'s reach (the
        caller reserved it for this key: a generated function's own argument, ``lr``)."""
        if self._by_key.get(key, identifier) != identifier or identifier in self._taken:
            raise ValueError(f"identifier {identifier!r} is already given")
        self._taken.add(identifier)
        self._by_key[key] = identifier
        return identifier

    def internal(self, stem: str) -> str:
        """A fresh name for generated helpers: starts with ``_``, so no user name takes it."""
        candidate, k = f"_{stem}", 0
        while candidate in self._taken:
            k += 1
            candidate = f"_{stem}{k}"
        self._taken.add(candidate)
        return candidate
