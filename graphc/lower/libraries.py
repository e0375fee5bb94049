"""The array libraries a program can run on, and what running on one takes.

``numpy`` runs the numpy module lowering prints by default. Every other library runs the
module printed for the Python array API standard (:mod:`graphc.lower.array_api`) in its
own namespace: PyTorch and CuPy through ``array-api-compat`` (which makes their
namespaces follow the standard), JAX through ``jax.numpy`` (itself an array-API
namespace), and ``array_api_strict`` (a strict, minimal namespace over numpy that
refuses anything the standard does not promise: the tests' witness that the printed
module is standard).

A library is imported only when a program asks for it; a missing one is a
:class:`~graphc.errors.BackendError` that names what to install.

>>> library("numpy").namespace is None
True
>>> library("tensorflow")
Traceback (most recent call last):
...
graphc.errors.BackendError: unknown backend 'tensorflow'; the backends are array_api_strict, cupy, jax, numpy, torch
"""

from __future__ import annotations

import importlib
import importlib.util
import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import BackendError
from .array_api import ARRAY_API, ARRAY_API_IMMUTABLE
from .backend import NUMPY, Backend

__all__ = ["Library", "LIBRARIES", "library", "Runtime", "runtime"]

REAL_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")


@dataclass(frozen=True)
class Library:
    name: str  # what gc.compile(backend=...) takes
    backend: Backend  # how lowering prints for it
    namespace: str | None  # the module the generated code imports as xp (None: plain numpy)
    requires: tuple[str, ...] = ()  # modules that must import
    install: str = ""  # what to pip install when one is missing
    x64_switch: bool = False  # float64 needs a switch turned on (JAX's jax_enable_x64)

    def missing(self) -> str | None:
        """The first module this library needs that is not installed, else None (nothing imported).

        >>> LIBRARIES["numpy"].missing() is None
        True
        """
        return next((m for m in self.requires if importlib.util.find_spec(m) is None), None)


LIBRARIES = {lib.name: lib for lib in (
    Library("numpy", NUMPY, None),
    Library("torch", ARRAY_API, "array_api_compat.torch", ("torch", "array_api_compat"),
            "pip install 'graphc[torch]' (torch and array-api-compat)"),
    Library("jax", ARRAY_API_IMMUTABLE, "jax.numpy", ("jax",), "pip install 'graphc[jax]' (jax)", x64_switch=True),
    Library("cupy", ARRAY_API, "array_api_compat.cupy", ("cupy", "array_api_compat"),
            "pip install 'graphc[cupy]' (cupy and array-api-compat; it needs a CUDA GPU)"),
    Library("array_api_strict", ARRAY_API, "array_api_strict", ("array_api_strict",),
            "pip install array-api-strict"),
)}


def library(name: str) -> Library:
    """The library called ``name``, or a BackendError listing the known ones."""
    if not isinstance(name, str) or name not in LIBRARIES:
        raise BackendError(f"unknown backend {name!r}; the backends are {', '.join(sorted(LIBRARIES))}")
    return LIBRARIES[name]


class Runtime:
    """One library, imported: its namespace, and the feeds and seeds it is called with."""

    def __init__(self, lib: Library):
        self.library = lib
        for module in lib.requires:
            try:
                importlib.import_module(module)
            except ImportError as error:
                raise BackendError(
                    f"backend {lib.name!r} needs the package {module!r}, which is not installed ({error}); "
                    f"install it: {lib.install}"
                ) from None
        self.xp = importlib.import_module(lib.namespace) if lib.namespace else np

    @property
    def name(self) -> str:
        return self.library.name

    @property
    def namespace(self) -> str | None:
        return self.library.namespace

    def check_dtypes(self, dtypes: set[str], graph_name: str) -> None:
        """A float64 graph on JAX needs jax_enable_x64: without it JAX computes in float32."""
        if not (self.library.x64_switch and "float64" in dtypes):
            return
        import jax

        if not jax.config.read("jax_enable_x64"):
            raise BackendError(
                f"graph {graph_name!r} computes in float64, but JAX has 64-bit floats off (jax_enable_x64 is "
                "False) and would compute in float32; turn it on before compiling with "
                "jax.config.update('jax_enable_x64', True), or declare the graph's values float32"
            )

    def is_native(self, value) -> bool:
        """An array of this library (not numpy's, not a Python number or list)."""
        return (not isinstance(value, (np.ndarray, np.generic, numbers.Number, list, tuple))
                and hasattr(value, "shape") and hasattr(value, "dtype"))

    def numpy_dtype(self, value) -> np.dtype:
        for name in REAL_DTYPES:
            if value.dtype == getattr(self.xp, name, None):
                return np.dtype(name)
        return np.dtype(object)  # a complex or unknown dtype: the feed check refuses it by name

    def stand_in(self, value):
        """A numpy array of a native array's shape and dtype that costs nothing (zero strides):
        what the feed checks read, so a GPU array is never copied to the host to be checked."""
        if not self.is_native(value):
            return value
        return np.broadcast_to(np.zeros((), dtype=self.numpy_dtype(value)), tuple(int(d) for d in value.shape))

    def asarray(self, value, dtype: str):
        """``value`` (native, or a checked numpy array) as this library's array of ``dtype``."""
        return self.xp.asarray(value, dtype=getattr(self.xp, dtype))

    def to_numpy(self, value) -> np.ndarray:
        """A result as a numpy array (a copy from a GPU; numpy's own arrays as they are)."""
        if hasattr(value, "detach"):  # a torch tensor, perhaps on a GPU
            return value.detach().cpu().numpy()
        if hasattr(value, "get") and type(value).__module__.startswith("cupy"):
            return value.get()
        return np.asarray(value)

    def one(self, dtype: str):
        return self.xp.asarray(1.0, dtype=getattr(self.xp, dtype))


_RUNTIMES: dict[str, Runtime] = {}


def runtime(name: str) -> Runtime:
    """The imported library ``name`` (imported once)."""
    lib = library(name)
    if lib.name not in _RUNTIMES:
        _RUNTIMES[lib.name] = Runtime(lib)
    return _RUNTIMES[lib.name]
