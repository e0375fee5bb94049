"""Load generated source as a module, registered with ``linecache`` so tracebacks show it.

The module is compiled one top-level ``def`` at a time and the pieces run in order into one
namespace: the same code objects as compiling the source at once (line numbers, bytecode),
without the tree of the whole source, which CPython holds until it is done (a
20,000-node chain's module: ~380 MB at its peak at once, ~195 MB piece by piece).
"""

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
    for code in _compiled(source, filename):
        exec(code, module.__dict__)  # noqa: S102 - our own generated code
    return module


@functools.lru_cache(maxsize=32)
def _compiled(source: str, filename: str) -> tuple[types.CodeType, ...]:
    """Python's compile of a module source, piece by piece (``pieces``): immutable, so
    programs of one source (the compile cache hands out one per gc.compile) share it; each
    runs it into a module of its own."""
    cut = pieces(source)
    if cut is None:
        return (_compile(source, filename),)
    (_, head), *rest = cut
    imports = "; ".join(_imports(head)) + "\n"
    try:
        codes = [_compile(head, filename)]
        # each piece after the head runs the head's imports again (the modules are loaded: a
        # lookup each), so CPython compiles a call of an imported module's function in it as in
        # the whole source (it knows the name is a module's: LOAD_ATTR, not LOAD_METHOD)
        codes += [_moved(_compile(imports + text, filename), first - 2) for first, text in rest]
    except SyntaxError:  # reported at its place in the whole source
        return (_compile(source, filename),)
    return tuple(codes)


def _compile(text: str, filename: str) -> types.CodeType:
    """Python's compile of module source as the saved file compiles: under none of this
    module's future imports."""
    return compile(text, filename, "exec", dont_inherit=True)


def pieces(source: str) -> list[tuple[int, str]] | None:
    """``source`` cut before each line that starts a top-level ``def``: (first line number, text),
    or None when it cannot be cut so: a top-level import after the first cut or over several
    lines, a future import (it binds the whole module).

    A ``def`` at the start of a line is a top-level statement, or inside a string literal,
    which leaves the piece before it unterminated (a SyntaxError: the caller compiles the
    whole source instead); a decorated def is cut before its decorators.
    """
    starts = [_decorated(source, k) for k in _line_starts(source, "def ")]
    imports = sorted(_line_starts(source, "import ") + _line_starts(source, "from "))
    if starts and imports and imports[-1] > starts[0]:  # an import the pieces before it do not run
        return None
    for k in imports:
        end = source.find("\n", k)
        line = source[k:] if end < 0 else source[k:end]
        if "__future__" in line or "(" in line or line.rstrip().endswith("\\"):
            return None
    cuts = sorted({0, *starts})
    firsts = [1]
    for a, b in zip(cuts, cuts[1:]):
        firsts.append(firsts[-1] + source.count("\n", a, b))
    return [(first, source[a:b]) for first, a, b in zip(firsts, cuts, cuts[1:] + [len(source)])]


def _line_starts(source: str, text: str) -> list[int]:
    """Where the lines that start with ``text`` start (str.find: a C scan, ~1 ms a megabyte)."""
    found = [0] if source.startswith(text) else []
    k = source.find("\n" + text)
    while k >= 0:
        found.append(k + 1)
        k = source.find("\n" + text, k + 1)
    return found


def _decorated(source: str, k: int) -> int:
    """The start of the def starting at ``k`` with the decorator lines right above it."""
    while k > 0:
        above = source.rfind("\n", 0, k - 1) + 1
        if not source.startswith("@", above):
            break
        k = above
    return k


def _imports(head: str) -> list[str]:
    """The top-level import statements of ``head``, without their comments."""
    return [line.split("#")[0].strip() for line in head.splitlines() if line.startswith(("import ", "from "))]


def _moved(code: types.CodeType, lines: int) -> types.CodeType:
    """``code`` and the code objects it holds (functions, comprehensions) ``lines`` further
    down: a code object's line table counts from its first line number."""
    consts = tuple(_moved(c, lines) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + lines, co_consts=consts)
