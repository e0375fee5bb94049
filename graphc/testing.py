"""The pytest plugin: graphc's gradient check as a fixture (the ``pytest11`` entry point).

    def test_my_net(gradcheck):
        gradcheck(prog, feeds)          # raises GradientError on a mismatch

The check itself is :func:`graphc.gradcheck.check_gradients` (``gc.check_gradients``).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import gradcheck as _gradcheck
from .gradcheck import GradientReport
from .pipeline import compile as _compile

__all__ = ["check_gradients", "GradientReport", "gradcheck"]


def check_gradients(prog, feeds: Mapping, rtol: float = 1e-5, atol: float = 1e-7, eps: float = 1e-6,
                    seed: int = 0, max_entries: int = 64, raise_on_failure: bool = True,
                    sample: int | None = None) -> GradientReport:
    """Compare ``prog``'s gradients with float64 central differences; ``prog`` may be a
    graph, compiled first. The check and its options: :func:`graphc.gradcheck.check_gradients`.

    >>> import graphc as gc
    >>> g = gc.Graph("square"); x = g.param("x", shape=(2,)); _ = g.output("loss", gc.sum(x * x))
    >>> gc.check_gradients(g, {"x": [1.0, -2.0]}).ok
    True
    """
    if not hasattr(prog, "value_and_grad"):
        prog = _compile(prog)
    return _gradcheck.check_gradients(prog, feeds, rtol=rtol, atol=atol, eps=eps, seed=seed,
                                      max_entries=max_entries, raise_on_failure=raise_on_failure, sample=sample)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixture
    pytest = None

if pytest is not None:

    @pytest.fixture
    def gradcheck():
        """A fixture: ``gradcheck(prog_or_graph, feeds, **options)`` runs check_gradients."""

        def run(prog, feeds, **options) -> GradientReport:
            return check_gradients(prog, feeds, **options)

        return run
