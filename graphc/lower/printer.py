"""The sympy printer lowering uses: the op table's printed form (``graphc/ops/printing.py``)."""

from __future__ import annotations

from ..ops.printing import GraphcPrinter, check_printable, print_expr, print_formula

__all__ = ["GraphcPrinter", "print_expr", "print_formula", "check_printable"]
