"""A big constant lives in the generated module as its bytes, never as a list literal."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import graphc as gc

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('graphc', 'sympy', 'networkx'):
            raise ImportError('the saved module must not need ' + name)
sys.meta_path.insert(0, Block())
import importlib.util, numpy
spec = importlib.util.spec_from_file_location('saved', sys.argv[1])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
x = numpy.load(sys.argv[2])
numpy.save(sys.argv[3], module.forward({'x': x})['y'])
"""


def big_graph(values: np.ndarray, dtype: str = "float64") -> gc.Graph:
    g = gc.Graph("big")
    x = g.input("x", shape=values.shape, dtype=dtype)
    g.output("y", x * g.const(values) + 1.0)
    return g


def test_a_big_constant_is_stored_compactly_and_exactly(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(200, 300))
    values[0, :3] = [np.inf, -np.inf, np.nan]
    prog = gc.compile(big_graph(values))
    assert len(prog.source) < 1.4 * values.nbytes + 20_000  # base64: 4/3 of the bytes
    assert "[[" not in prog.source  # no nested list literal
    x = rng.normal(size=values.shape)
    got = prog.forward({"x": x})["y"]
    np.testing.assert_array_equal(got, x * values + 1.0)  # bit for bit, inf and nan included

    path = prog.save(tmp_path / "big_gen.py")
    np.save(tmp_path / "x.npy", x)
    subprocess.run([sys.executable, "-c", BLOCKER, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                   check=True, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), got)


def test_a_big_constant_of_a_float32_graph_is_stored_as_float32():
    values = np.linspace(-1.0, 1.0, 1000).reshape(10, 100)
    prog = gc.compile(big_graph(values, "float32"))
    assert len(prog.source) < 1.4 * values.astype(np.float32).nbytes + 20_000
    got = prog.forward({"x": np.ones((10, 100))})["y"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values.astype(np.float32) + np.float32(1.0))


def test_a_small_constant_stays_a_readable_literal():
    prog = gc.compile(big_graph(np.array([[0.5, -1.25]])))
    assert "numpy.array([[0.5, -1.25]], dtype=numpy.float64)" in prog.source
    assert "_unpack" not in prog.source and "base64" not in prog.source
