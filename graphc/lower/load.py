"""Load generated source as a module, registered with ``linecache`` so tracebacks show it."""

from __future__ import annotations

import functools
import hashlib
import linecache
import types

__all__ = ["load_source"]


def load_source(source: str, name: str) -> types.ModuleType:
    """Compile and run ``source`` as a fresh module; its lines show in tracebacks."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    filename = f"<graphc {name!r} {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(f"graphc_generated_{digest}")
    module.__file__ = filename
    exec(_compiled(source, filename), module.__dict__)  # noqa: S102 - our own generated code
    return module


@functools.lru_cache(maxsize=32)
def _compiled(source: str, filename: str) -> types.CodeType:
    """Python's compile of a module source: immutable, so programs of one source (the compile
    cache hands out one per gc.compile) share it; each runs it into a module of its own."""
    return compile(source, filename, "exec")
