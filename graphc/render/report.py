"""The report: one self-contained HTML page for a compiled program.

Every stage's drawing (inline SVG, in pipeline order), the generated forward and backward
code (highlighted), each stage's pass statistics, a gradient-check table and, for scalar
graphs, the gradient formulas as MathML. Nothing on the page is fetched from a network;
every piece of text from the graph is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path

from .. import ir
from ..errors import GraphcError
from . import backends
from .formulas import gradient_formulas, to_mathml
from .highlight import CSS as CODE_CSS
from .highlight import highlight

__all__ = ["write_report", "report_html"]

PAGE_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #111827; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #e5e7eb; padding-bottom: .2em; margin-top: 2em; }
nav a { margin-right: 1em; } figure { margin: 1.2em 0; } figcaption { color: #4b5563; font-size: .9em; }
.drawing { overflow-x: auto; border: 1px solid #e5e7eb; padding: .5em; background: #fff; }
.drawing svg { max-width: 100%; height: auto; }
table.stats, table.check { border-collapse: collapse; font-size: .9em; }
table.stats td, table.stats th, table.check td, table.check th { border: 1px solid #e5e7eb; padding: .25em .6em; }
.ok { color: #15803d; } .kink { color: #b45309; } .FAIL { color: #dc2626; font-weight: 600; }
math { font-size: 1.15em; margin: .4em 0; }
"""


def _svg_fragment(svg: str) -> str:
    """An SVG document as an inline element: the XML prolog and doctype dropped."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _drawings(prog, feeds) -> list[str]:
    from . import stage_digraphs

    parts = []
    can_draw = backends.available("svg") is not None
    for k, (name, digraph) in enumerate(stage_digraphs(prog, feeds), 1):
        graph = prog.stages[name]
        caption = f"{k}. {name}: {graph.number_of_nodes()} nodes"
        if can_draw:
            body = _svg_fragment(backends.render_bytes(digraph.source, "svg").decode("utf-8"))
        else:
            body = f'<pre class="code">{html.escape(digraph.source)}</pre><p>{html.escape(backends.INSTALL_HINT)}</p>'
        anchor = "stage-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)
        parts.append(f'<figure id="{anchor}" class="stage"><figcaption>{html.escape(caption)}</figcaption>'
                     f'<div class="drawing">{body}</div></figure>')
    return parts


def _stats(prog) -> str:
    rows = []
    for k, (name, graph) in enumerate(prog.stages.items(), 1):
        passes = (graph.graph.get(ir.STATS) or {}).get("passes", {})
        done = "; ".join(f"{p}: " + ", ".join(f"{w} {n}" for w, n in sorted(c.items())) for p, c in passes.items())
        rows.append(f"<tr><td>{k}</td><td>{html.escape(name)}</td><td>{graph.number_of_nodes()}</td>"
                    f"<td>{html.escape(done) or '—'}</td></tr>")
    return ('<table class="stats"><tr><th>#</th><th>stage</th><th>nodes</th><th>what its passes did</th></tr>'
            + "".join(rows) + "</table>")


REPORT_SAMPLE = 64  # entries the page checks one by one, drawn from all params: its cost stays flat


def _check(prog, feeds) -> str:
    if feeds is None:
        return "<p>Pass feeds to <code>prog.report(path, feeds)</code> to check the gradients here.</p>"
    from ..testing import check_gradients

    try:
        report = check_gradients(prog, feeds, raise_on_failure=False, sample=REPORT_SAMPLE)
    except GraphcError as error:
        return f"<p>The gradient check could not run: {html.escape(str(error))}</p>"
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in ("param", "index", "analytic", "numeric", "error",
                                                     "tolerance", "status")) + "</tr>"
    rows = "".join(
        f"<tr><td>{html.escape(r.param)}</td><td>{html.escape(str(r.index))}</td><td>{r.analytic:.6g}</td>"
        f"<td>{r.numeric:.6g}</td><td>{r.error:.3g}</td><td>{r.tolerance:.3g}</td>"
        f'<td class="{html.escape(r.status)}">{html.escape(r.status)}</td></tr>' for r in report.rows)
    verdict = "all agree" if report.ok else f"{len(report.failures)} failed"
    checked, total = report.sampled or (len(report.rows) - 1, len(report.rows) - 1)
    scope = (f"one random direction over every param, and {checked} of their {total} entries one by one"
             + (" (a seeded sample)" if checked < total else ""))
    return (f"<p>Analytic gradients against central differences (float64): {scope}; {len(report.rows)} checks, "
            f"{html.escape(verdict)}, {len(report.kinks)} at kinks.</p><table class=\"check\">{head}{rows}</table>")


def _formulas(prog) -> str:
    graph = prog.stages.get("expanded", next(iter(prog.stages.values())))
    formulas = gradient_formulas(graph)
    if not formulas:
        return "<p>Formulas are shown for scalar graphs (one number per example); this one has tensors.</p>"
    (target, loss), *partials = formulas
    items = [to_mathml(target, loss)] + [to_mathml(f"∂{target}/∂{name}", expr) for name, expr in partials]
    return ("<p>Per example; θ(z, 1) is the step with θ(0) = 1 (ReLU's derivative as the lecture defines it).</p>"
            + "".join(items))


def report_html(prog, feeds: Mapping | None = None) -> str:
    """The whole page as a string."""
    title = f"graphc report: {prog.name}"
    code = [("forward", prog.forward_source), ("backward", prog.backward_source)]
    sections = [
        ("stages", "Every stage", "".join(_drawings(prog, feeds))),
        ("code", "Generated code", "".join(
            f"<h3>{name}</h3><pre class=\"code\">{highlight(text)}</pre>" for name, text in code if text)),
        ("stats", "Pass statistics", _stats(prog)),
        ("check", "Gradient check", _check(prog, feeds)),
        ("math", "Gradient formulas", _formulas(prog)),
    ]
    nav = "".join(f'<a href="#{key}">{html.escape(head)}</a>' for key, head, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{html.escape(head)}</h2>{content}</section>'
                   for key, head, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{PAGE_CSS}{CODE_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>Outputs {html.escape(', '.join(prog.outputs))}; gradients with respect to "
            f"{html.escape(', '.join(prog.wrt) or 'nothing')}.</p><nav>{nav}</nav>{body}</body></html>\n")


def write_report(prog, path: str | Path, feeds: Mapping | None = None) -> Path:
    """Write the report of ``prog`` to ``path`` (one HTML file); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_html(prog, feeds), encoding="utf-8")
    return path
