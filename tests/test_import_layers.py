"""The base knows no stage, and stages do not import each other or the user API.

A static check of the import statements (module level and inside functions) of the op
table, the IR editor, the passes, differentiation and declaration: the op table builds
with the IR editor, never with graphc.functional or the builder; passes and
differentiation never import lowering or the user API; declaring never imports drawing.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "graphc"

# module (path under graphc/, a folder meaning every file in it) -> modules it must not import
NEVER = {
    "ops": ["functional", "builder", "differentiate", "passes", "lower", "schedule", "render", "pipeline",
            "program", "testing", "io", "zoo", "cli"],
    "ir.py": ["ops", "functional", "builder", "passes", "lower", "render", "pipeline"],
    "verify.py": ["functional", "builder", "passes", "lower", "render", "pipeline", "differentiate"],
    "passes": ["functional", "builder", "differentiate", "lower", "schedule", "render", "pipeline", "program"],
    "differentiate.py": ["functional", "builder", "passes", "lower", "schedule", "render", "pipeline", "program"],
    "builder.py": ["render", "pipeline", "program", "lower", "passes", "differentiate"],
    "functional.py": ["render", "pipeline", "program", "lower", "passes", "differentiate"],
}


def imported_modules(path: Path) -> set[str]:
    """The graphc modules a file imports, as paths under graphc/ without .py (``lower/emit``)."""
    here = path.relative_to(PACKAGE).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level + 1])
            elif node.module and node.module.split(".")[0] == "graphc":
                base = []
                node = ast.ImportFrom(module=".".join(node.module.split(".")[1:]) or None, names=node.names, level=1)
            else:
                continue
            module = base + (node.module.split(".") if node.module else [])
            found.add("/".join(module))
            found.update("/".join(module + [alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update("/".join(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "graphc")
    return found


def files(key: str) -> list[Path]:
    target = PACKAGE / key
    return sorted(target.glob("*.py")) if target.is_dir() else [target]


@pytest.mark.parametrize("key", sorted(NEVER))
def test_a_layer_imports_no_module_above_it(key):
    for path in files(key):
        imported = imported_modules(path)
        for forbidden in NEVER[key]:
            hits = sorted(m for m in imported if m == forbidden or m.startswith(forbidden + "/"))
            assert not hits, f"{path.relative_to(PACKAGE)} imports {hits}, which {key} must not import"


def test_the_check_sees_a_forbidden_import():
    # the pipeline imports the passes and lowering, as it must: the check finds them
    imported = imported_modules(PACKAGE / "pipeline.py")
    assert any(m.startswith("passes") for m in imported) and any(m.startswith("lower") for m in imported)
