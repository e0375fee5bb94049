"""Python syntax highlighting for the report, from the standard library's tokenizer.

Every token is escaped and wrapped in a ``<span class=...>``; the page's stylesheet colours
the classes. No dependency, and nothing is executed.

>>> highlight("x = exp(y)  # 'x'")
'<span class="n">x</span> <span class="o">=</span> <span class="n">exp</span>...<span class="c"># &#x27;x&#x27;</span>'
"""

from __future__ import annotations

import html
import io
import keyword
import token
import tokenize

__all__ = ["highlight", "CSS"]

CSS = """
.code { background: #f8fafc; border: 1px solid #e2e8f0; padding: 0.8em; overflow-x: auto;
        font: 12.5px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
.code .k { color: #7c3aed; font-weight: 600; } .code .s { color: #047857; }
.code .c { color: #64748b; font-style: italic; } .code .m { color: #b45309; }
.code .f { color: #1d4ed8; } .code .o { color: #334155; }
"""


def _kind(tok: tokenize.TokenInfo, previous: str) -> str:
    if tok.type == token.NAME:
        if keyword.iskeyword(tok.string):
            return "k"
        return "f" if previous == "def" else "n"
    return {token.STRING: "s", token.COMMENT: "c", token.NUMBER: "m", token.OP: "o"}.get(tok.type, "")


def highlight(source: str) -> str:
    """``source`` as escaped HTML with token classes (falls back to plain escaped text)."""
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    row, col, previous = 1, 0, ""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return html.escape(source)
    for tok in tokens:
        (srow, scol), (erow, ecol) = tok.start, tok.end
        if tok.type == token.ENDMARKER:
            break
        if (srow, scol) > (row, col):  # the whitespace between tokens, verbatim
            out.append(html.escape(_between(lines, row, col, srow, scol)))
        text = html.escape(tok.string)
        kind = _kind(tok, previous)
        out.append(f'<span class="{kind}">{text}</span>' if kind and tok.string.strip() else text)
        if tok.type == token.NAME:
            previous = tok.string
        row, col = erow, ecol
    out.append(html.escape(_between(lines, row, col, len(lines) + 1, 0)))
    return "".join(out)


def _between(lines: list[str], row: int, col: int, end_row: int, end_col: int) -> str:
    if row == end_row:
        return lines[row - 1][col:end_col] if row - 1 < len(lines) else ""
    parts = [lines[row - 1][col:]] if row - 1 < len(lines) else []
    parts += lines[row:end_row - 1]
    if end_row - 1 < len(lines):
        parts.append(lines[end_row - 1][:end_col])
    return "".join(parts)
