"""Start-up: ``import graphc`` and the command line's help load none of the heavy parts.

The public names are loaded when first used (``graphc/__init__.py``); these tests hold
the behaviour (which modules a fresh interpreter has loaded), not its speed, which
``benchmarks/startup.py`` measures.
"""

import json
import subprocess
import sys

import pytest

import graphc as gc

HEAVY = ["sympy", "networkx", "graphviz", "pytest", "graphc.testing", "graphc.builder", "graphc.pipeline"]


def loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_graphc_loads_no_heavy_module():
    assert loaded_after("import graphc") == []


def test_an_error_class_and_the_version_load_no_heavy_module():
    assert loaded_after("import graphc as gc\ngc.GraphcError, gc.ShapeError, gc.__version__") == []


def test_the_command_line_help_loads_no_heavy_module():
    code = "import sys, graphc.cli\ntry:\n    graphc.cli.main(['--help'])\nexcept SystemExit:\n    pass"
    assert loaded_after(code) == []


def test_the_command_line_help_lists_every_command():
    done = subprocess.run([sys.executable, "-m", "graphc", "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "compile", "code", "render", "explore", "check", "train", "zoo"):
        assert command in done.stdout


def test_a_name_loads_what_it_needs():
    assert loaded_after("import graphc as gc\ngc.Graph") == ["graphc.builder", "networkx", "sympy"]


def test_every_public_name_is_there():
    names = gc.__all__
    assert {"Graph", "compile", "relu", "mse", "softmax_cross_entropy", "GraphcError", "zoo"} <= set(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(gc, name) is not None
    assert set(names) <= set(dir(gc))


def test_from_import_works_for_every_kind_of_name():
    namespace = {}
    exec("from graphc import Graph, relu, zoo, GraphcError, check_gradients", namespace)
    assert namespace["relu"] is gc.relu and namespace["zoo"].NAMES


def test_star_import_gives_the_public_names():
    namespace = {}
    exec("from graphc import *", namespace)
    assert set(gc.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'relux'"):
        gc.relux  # noqa: B018


@pytest.mark.parametrize("name", ["render", "evaluate", "verify"])
def test_a_function_named_like_its_module_stays_the_function(name):
    # the submodule imported first (as the pipeline does), the function asked for after
    code = (f"import importlib, graphc as gc\nimportlib.import_module('graphc.{name}')\n"
            f"print(callable(gc.{name}) and not isinstance(gc.{name}, type(gc)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"



def test_a_submodule_is_an_attribute_of_the_package():
    assert gc.io.Limits().nodes > 0 and gc.ir.OP == "op"
