"""The docs cannot drift: README examples run, commands parse, the pipeline page is fresh."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from graphc import cli

ROOT = Path(__file__).resolve().parents[1]
OTHERS = {"ir.md", "rendering.md"}  # pages written alongside; checked once they exist


def test_readme_examples_run():
    # README.md sits outside pytest's doctest paths, so it is run here.
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, optionflags=flags)
    assert result.attempted > 5 and result.failed == 0


def test_the_pipeline_page_is_fresh():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "make_pipeline.py"), "--check"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=300)
    assert done.returncode == 0, done.stderr


def _commands(path: Path) -> list[str]:
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("graphc ") and "[" not in line]


@pytest.mark.parametrize("page", ["README.md", "docs/cli.md", "docs/tutorial.md", "docs/index.md", "docs/training.md"])
def test_commands_in_the_docs_parse(page):
    for command in _commands(ROOT / page):
        args = cli.parser().parse_args(command.split()[1:])
        assert callable(args.run)


def test_the_two_commands_exist():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/demo.sh" in readme and "bash scripts/test.sh" in readme
    assert (ROOT / "scripts" / "demo.sh").is_file() and (ROOT / "scripts" / "test.sh").is_file()


@pytest.mark.parametrize("page", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_links_to_pages_resolve(page):
    path = ROOT / page
    for target in re.findall(r"\]\(([^)#]+\.md)\)", path.read_text(encoding="utf-8")):
        resolved = (path.parent / target).resolve()
        if resolved.name in OTHERS and not resolved.exists():
            continue
        assert resolved.exists(), f"{page} links to missing {target}"
