"""Initializers against their published formulas, over big samples, in graphc's layout."""

import math

import numpy as np
import pytest

import graphc as gc


def test_fans_in_graphcs_layout():
    assert gc.init.fans((64, 32)) == (64, 32)  # W is (in, out)
    assert gc.init.fans((16, 3, 5, 5)) == (75, 400)  # (C_out, C, kh, kw): fan-in C kh kw
    assert gc.init.fans((10,)) == (10, 10)
    assert gc.init.fans(()) == (1, 1)


@pytest.mark.parametrize("shape", [(400, 600), (256, 16, 3, 3)])
def test_glorot_uniform_fills_its_interval(shape):
    fan_in, fan_out = gc.init.fans(shape)
    limit = math.sqrt(6 / (fan_in + fan_out))
    W = gc.init.glorot_uniform(shape, seed=1)
    assert W.shape == shape and W.dtype == np.float64
    assert -limit <= W.min() < -0.999 * limit and 0.999 * limit < W.max() <= limit
    assert W.var() == pytest.approx(2 / (fan_in + fan_out), rel=0.02)  # limit**2 / 3
    assert abs(W.mean()) < 0.01 * limit


@pytest.mark.parametrize("shape", [(400, 600), (256, 16, 3, 3)])
def test_he_uniform_fills_its_interval(shape):
    fan_in, _ = gc.init.fans(shape)
    limit = math.sqrt(6 / fan_in)
    W = gc.init.he_uniform(shape, seed=2)
    assert -limit <= W.min() < -0.999 * limit and 0.999 * limit < W.max() <= limit
    assert W.var() == pytest.approx(2 / fan_in, rel=0.02)


@pytest.mark.parametrize("shape", [(400, 600), (256, 16, 3, 3)])
def test_normal_initializers_have_the_published_spread(shape):
    fan_in, fan_out = gc.init.fans(shape)
    for init, std in ((gc.init.glorot_normal, math.sqrt(2 / (fan_in + fan_out))),
                      (gc.init.he_normal, math.sqrt(2 / fan_in))):
        W = init(shape, seed=3)
        assert W.std() == pytest.approx(std, rel=0.01)
        assert abs(W.mean()) < 0.01 * std
        assert np.abs(W).max() > 3.5 * std  # not truncated: a plain normal has tails


@pytest.mark.parametrize("init", [gc.init.glorot_uniform, gc.init.glorot_normal, gc.init.he_uniform,
                                  gc.init.he_normal])
def test_the_seed_decides_the_values(init):
    np.testing.assert_array_equal(init((8, 4), 7), init((8, 4), 7))
    assert not np.array_equal(init((8, 4), 7), init((8, 4), 8))
    generator = np.random.default_rng(7)
    np.testing.assert_array_equal(init((8, 4), generator), init((8, 4), 7))


def test_zeros():
    np.testing.assert_array_equal(gc.init.zeros((3,)), np.zeros(3))
    assert gc.init.zeros(4).shape == (4,)


def test_bad_shapes_and_seeds_are_typed_errors():
    with pytest.raises(gc.ShapeError, match="concrete dims"):
        gc.init.he_normal(("N", 3), 0)
    with pytest.raises(gc.ShapeError, match="its fan is 0"):
        gc.init.glorot_uniform((0, 0), 0)
    with pytest.raises(gc.HyperparameterError, match="seed must be"):
        gc.init.he_normal((2, 2), -1)
    with pytest.raises(gc.HyperparameterError, match="seed must be"):
        gc.init.he_normal((2, 2), 1.5)
