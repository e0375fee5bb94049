"""The report: one self-contained HTML page for a compiled program, to print or to read.

Every stage's drawing (inline SVG, in pipeline order, each at its own size in a scrolling
frame, the last one open and the others one click away), the generated forward and
backward code (highlighted), each stage's pass statistics, a gradient-check table and, for
scalar graphs, the gradient formulas as MathML. It says what the values drawn are (the
feeds given, or trained ones) and links to the explorer page (``prog.explore``) when one
was written, which is the interactive view of the same stages. Nothing on the page is
fetched from a network; every piece of text from the graph is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path

from . import ir
from .explore.annotate import stage_annotations
from .render import backends, stage_digraphs
from .render.formulas import gradient_formulas, to_mathml
from .render.highlight import CSS as CODE_CSS
from .render.highlight import highlight
from .render.labels import node_expression

__all__ = ["write_report", "report_html"]

PAGE_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #111827; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #e5e7eb; padding-bottom: .2em; margin-top: 2em; }
nav a { margin-right: 1em; } figure { margin: 1.2em 0; } figcaption { color: #4b5563; font-size: .9em; }
.drawing { overflow: auto; max-height: 80vh; border: 1px solid #e5e7eb; padding: .5em; background: #fff; }
.drawing svg { max-width: none; height: auto; }  /* at its own size: a squeezed drawing is unreadable */
details.stage > summary { cursor: pointer; font-weight: 600; padding: .3em 0; }
.explorer { background: #eff6ff; border: 1px solid #bfdbfe; padding: .6em 1em; border-radius: 6px; }
table.stats, table.check { border-collapse: collapse; font-size: .9em; }
table.stats td, table.stats th, table.check td, table.check th { border: 1px solid #e5e7eb; padding: .25em .6em; }
.ok { color: #15803d; } .kink { color: #b45309; } .FAIL { color: #dc2626; font-weight: 600; }
math { font-size: 1.15em; margin: .4em 0; }
"""


def _svg_fragment(svg: str) -> str:
    """An SVG document as an inline element: the XML prolog and doctype dropped."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


DRAW_EVERY_STAGE_BELOW = 150  # nodes in the largest stage; above, the first and last stages are drawn


def _drawings(prog, feeds) -> list[str]:
    """Each stage's drawing. A big program draws its first and last stages only (ten 2,000-node
    drawings took 30 s and 12 MB); the others are one click away in the explorer."""
    parts = []
    can_draw = backends.available("svg") is not None
    names = list(prog.stages)
    small = max((g.number_of_nodes() for g in prog.stages.values()), default=0) < DRAW_EVERY_STAGE_BELOW
    drawn = names if small else [names[0], names[-1]]
    notes = stage_annotations({n: prog.stages[n] for n in drawn}, feeds) if feeds is not None else None
    digraphs = dict(stage_digraphs(prog, notes, drawn))
    for k, name in enumerate(names, 1):
        graph = prog.stages[name]
        caption = f"{k}. {name}: {graph.number_of_nodes()} nodes"
        anchor = "stage-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)
        if name not in digraphs:
            parts.append(f'<details class="stage"><summary>{html.escape(caption)} (drawn in the explorer)'
                         f'</summary><figure id="{anchor}" class="stage"></figure></details>')
            continue
        digraph = digraphs[name]
        if can_draw:
            body = _svg_fragment(backends.render_bytes(digraph.source, "svg").decode("utf-8"))
        else:
            body = f'<pre class="code">{html.escape(digraph.source)}</pre><p>{html.escape(backends.INSTALL_HINT)}</p>'
        opened = " open" if k == len(names) else ""
        parts.append(f'<details class="stage"{opened}><summary>{html.escape(caption)}</summary>'
                     f'<figure id="{anchor}" class="stage"><div class="drawing">{body}</div></figure></details>')
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


def _check(prog, feeds, check=None) -> str:
    """The gradient-check table of ``check``: a GradientReport (rows, ok, failures, kinks,
    sampled) or the error that stopped the check, as its caller ran it."""
    if check is None:
        return ("<p>Pass feeds to <code>prog.report(path, feeds)</code> to check the gradients here.</p>"
                if feeds is None else "<p>No gradient check was run for these feeds.</p>")
    if isinstance(check, Exception):
        return f"<p>The gradient check could not run: {html.escape(str(check))}</p>"
    report = check
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in ("param", "index", "analytic", "numeric", "error",
                                                     "tolerance", "status")) + "</tr>"
    rows = "".join(
        f"<tr><td>{html.escape(r.param)}</td><td>{html.escape(str(r.index))}</td><td>{r.analytic:.6g}</td>"
        f"<td>{r.numeric:.6g}</td><td>{r.error:.3g}</td><td>{r.tolerance:.3g}</td>"
        f'<td class="{html.escape(r.status)}">{html.escape(r.status)}</td></tr>' for r in report.rows)
    verdict = "all agree" if report.ok else f"{len(report.failures)} failed"
    checked, total = getattr(report, "sampled", None) or (len(report.rows) - 1, len(report.rows) - 1)
    scope = (f"one random direction over every param, and {checked} of their {total} entries one by one"
             + (" (a seeded sample)" if checked < total else ""))
    return (f"<p>Analytic gradients against central differences (float64): {scope}; {len(report.rows)} checks, "
            f"{html.escape(verdict)}, {len(report.kinks)} at kinks.</p><table class=\"check\">{head}{rows}</table>")


def _formulas(prog) -> str:
    graph = prog.stages.get("expanded", next(iter(prog.stages.values())))
    formulas = gradient_formulas(graph)
    if not formulas:
        return _kernel_formulas(prog)
    (target, loss), *partials = formulas
    items = [to_mathml(target, loss)] + [to_mathml(f"∂{target}/∂{name}", expr) for name, expr in partials]
    return ("<p>Per example; θ(z, 1) is the step with θ(0) = 1 (ReLU's derivative as the lecture defines it).</p>"
            + "".join(items))


def _values_note(feeds, values_are: str | None) -> str:
    if feeds is None:
        return "No feeds were given, so the drawings show the graph alone."
    return f"Values and gradients drawn for {html.escape(values_are or 'the feeds given')}."


KERNELS_SHOWN = 40


def _kernel_formulas(prog) -> str:
    """For tensor graphs: the formula of each elementwise kernel of the final graph, over its
    operands' names, in the order the generated code runs them."""
    graph = prog.stages.get("scheduled", next(reversed(prog.stages.values())))
    items = []
    for node in graph.nodes:
        expr = node_expression(graph, node)
        if expr is not None and len(items) < KERNELS_SHOWN:
            items.append(to_mathml(str(node), expr))
    if not items:
        return "<p>This graph has no elementwise kernel to write as a formula.</p>"
    more = len([n for n in graph.nodes if node_expression(graph, n) is not None]) - len(items)
    tail = f"<p>… and {more} more (the explorer shows each node's).</p>" if more > 0 else ""
    return ("<p>The loss is not one number per example, so it has no single closed form here; these are "
            "the elementwise kernels of the generated code, each over its operands' names "
            "(θ(z) is the step with θ(0) = 1).</p>" + "".join(items) + tail)


def report_html(prog, feeds: Mapping | None = None, explorer: str | None = None,
                values_are: str | None = None, check=None) -> str:
    """The whole page as a string; ``explorer`` is the relative address of the explorer page,
    ``check`` the gradient check its caller ran (:func:`graphc.gradcheck.check_for_page`)."""
    title = f"graphc report: {prog.name}"
    code = [("forward", prog.forward_source), ("backward", prog.backward_source)]
    sections = [
        ("stages", "Every stage", "".join(_drawings(prog, feeds))),
        ("code", "Generated code", "".join(
            f"<h3>{name}</h3><pre class=\"code\">{highlight(text)}</pre>" for name, text in code if text)),
        ("stats", "Pass statistics", _stats(prog)),
        ("check", "Gradient check", _check(prog, feeds, check)),
        ("math", "Gradient formulas", _formulas(prog)),
    ]
    nav = "".join(f'<a href="#{key}">{html.escape(head)}</a>' for key, head, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{html.escape(head)}</h2>{content}</section>'
                   for key, head, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{PAGE_CSS}{CODE_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>Outputs {html.escape(', '.join(prog.outputs))}; gradients with respect to "
            f"{html.escape(', '.join(prog.wrt) or 'nothing')}. {_values_note(feeds, values_are)}</p>"
            f"{_explorer_link(explorer)}<nav>{nav}</nav>{body}</body></html>\n")


def _explorer_link(explorer: str | None) -> str:
    if explorer is None:
        return ('<p class="explorer">To step through the stages, zoom into any node and replay training, '
                "write the explorer: <code>prog.explore(\"explore.html\", feeds, train=50)</code> "
                "or <code>graphc explore NET</code>.</p>")
    return (f'<p class="explorer"><a href="{html.escape(explorer)}">Open the explorer</a>: every stage '
            "pannable and zoomable, each node's formula, code, value and gradient, and the training replayed.</p>")


def write_report(prog, path: str | Path, feeds: Mapping | None = None, explorer: str | Path | None = None,
                 values_are: str | None = None, check=None) -> Path:
    """Write the report of ``prog`` to ``path`` (one HTML file); return the path. ``explorer``
    is an explorer page already written (linked relative to the report)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    link = None
    if explorer is not None:
        explorer = Path(explorer)
        link = explorer.name if explorer.parent.resolve() == path.parent.resolve() else explorer.resolve().as_uri()
    path.write_text(report_html(prog, feeds, link, values_are, check), encoding="utf-8")
    return path
