"""Every array library runs the same program: values and gradients agree with numpy's.

The programs come from the differential corpus (``corpus/networks.py``): networks under
every op of the table and networks drawn freely. Each is compiled once for numpy and
moved with ``prog.to(backend)`` onto the library under test; forward values,
``value_and_grad`` and a seeded ``value_and_grad`` must agree with the numpy program's
to 1e-12 (relative to the value's size) in float64, and to float32's precision in
float32. ``array_api_strict`` (a strict namespace over numpy, installed with the test
extra) holds the printed module to the array API standard wherever the suite runs;
PyTorch and JAX are checked where they are installed and skipped with the reason
elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus.networks import networks
from hypothesis import HealthCheck, given, settings

import graphc as gc
from graphc.lower.libraries import LIBRARIES
from graphc.ops import OPS

SAMPLE = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def _installed(module: str, why: str):
    missing = LIBRARIES[module].missing()  # torch needs array-api-compat beside it
    return pytest.param(module, marks=pytest.mark.skipif(missing is not None,
                                                          reason=f"{module} is not installed ({why})"))


def _backend(name: str):
    if name == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    return name


BACKENDS = [
    _installed("array_api_strict", "pip install array-api-strict"),
    _installed("torch", "pip install 'graphc[torch]'"),
    _installed("jax", "pip install 'graphc[jax]'"),
]


def to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    elif type(value).__module__.startswith("array_api_strict"):
        value = np.asarray(value._array)
    return np.asarray(value)


def assert_close(got: dict, want: dict, dtype: str, what: str) -> None:
    assert sorted(got) == sorted(want), what
    for name in want:
        expected = np.asarray(want[name])
        found = to_numpy(got[name])
        assert found.shape == expected.shape and found.dtype == expected.dtype, (what, name, found.dtype)
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        np.testing.assert_allclose(found, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * scale,
                                   err_msg=f"{what} {name!r}")


def agree(case, backend: str) -> None:
    prog = gc.compile(case.graph)
    other = prog.to(_backend(backend))
    assert other.backend == backend
    feeds = {k: np.asarray(v, dtype=case.graph.nx.nodes[k]["dtype"]) for k, v in case.feeds.items()}
    with np.errstate(all="ignore"):
        assert_close(other.forward(feeds), prog.forward(feeds), case.dtype, "forward")
        if prog.has_gradient:
            want, want_grads = prog.value_and_grad(feeds)
            got, got_grads = other.value_and_grad(feeds)
            assert_close(got, want, case.dtype, "value_and_grad outputs")
            assert_close(got_grads, want_grads, case.dtype, "gradient")
        seed = np.full(np.shape(prog.forward(feeds)[prog.target]), case.seed)
        _, want_grads = prog.value_and_grad(feeds, seed=seed)
        _, got_grads = other.value_and_grad(feeds, seed=seed)
        assert_close(got_grads, want_grads, case.dtype, "seeded gradient")


PER_OP = 1  # one network per op: 44 networks per backend


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", sorted(OPS))
def test_networks_under_each_op_agree_with_numpy(op, backend):
    @settings(SAMPLE, max_examples=PER_OP)
    @given(networks(op=op, cotangent="random"))
    def run(case):
        agree(case, backend)

    run()


@pytest.mark.parametrize("backend", BACKENDS)
def test_free_networks_agree_with_numpy(backend):
    @settings(SAMPLE, max_examples=20)
    @given(networks(max_steps=7))
    def run(case):
        agree(case, backend)

    run()
