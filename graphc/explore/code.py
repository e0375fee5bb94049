"""Which generated lines belong to which node: read from the comments the lowering writes.

Every statement of the generated module ends in (or follows) a comment naming the node
it computes, as ``# 'z1' matmul`` or ``('d_z2' fused; ...)``, and an SGD update as
``# SGD: 'W2'``. The explorer shows a clicked node's lines, grouped by function.

>>> source = "def forward_pass(x):\\n    z1 = x @ W1  # 'z1' matmul\\n    return (z1,)\\n"
>>> lines_by_node(source, ["z1", "x"])["z1"][1].strip()
"z1 = x @ W1  # 'z1' matmul"
"""

from __future__ import annotations

import re

__all__ = ["lines_by_node"]

_DEF = re.compile(r"^def (\w+)\(")
_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")
MAX_LINES = 14  # per node: enough for a fused kernel's statements in each function


def lines_by_node(source: str, nodes) -> dict[str, list[str]]:
    """Node id -> the lines of ``source`` whose comment names it, each function's under its name.

    A whole-line comment naming a node (the formula over an in-place kernel) also claims
    the uncommented statements under it.
    """
    by_repr = {repr(str(n)): str(n) for n in nodes}
    found: dict[str, dict[str, list[str]]] = {}
    function, owner = "module", None
    for line in source.splitlines():
        head = _DEF.match(line)
        if head:
            function, owner = head.group(1), None
            continue
        comment = line.find("#")
        names = [by_repr[q] for q in _QUOTED.findall(line[comment:]) if q in by_repr] if comment >= 0 else []
        if comment >= 0 and not names:
            owner = None  # "# level k": the claimed run ends
            continue
        if names:
            owner = names[0] if not line[:comment].strip() else None
            name = names[0]
        elif owner is not None and line.strip() and not line.strip().startswith(("del ", "return")):
            name = owner
        else:
            continue
        lines = found.setdefault(name, {}).setdefault(function, [])
        if len(lines) < MAX_LINES:
            lines.append(line)
    return {node: [row for function, lines in groups.items() for row in [f"{function}:", *lines]]
            for node, groups in found.items()}
