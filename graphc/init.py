"""Seeded initializers for params, in graphc's layout: ``gc.init.glorot_uniform(shape, seed)``.

A dense weight ``W`` of shape (in, out) has fan-in ``in`` and fan-out ``out``; a conv
kernel of shape (C_out, C, kh, kw) has fan-in C*kh*kw and fan-out C_out*kh*kw; a vector
of shape (n,) has both equal to n. The formulas are the published ones:

- Glorot and Bengio (2010): uniform on [-a, a] with a = sqrt(6 / (fan_in + fan_out)), or
  normal with standard deviation sqrt(2 / (fan_in + fan_out)),
- He et al. (2015), for ReLU layers: normal with standard deviation sqrt(2 / fan_in), or
  uniform on [-a, a] with a = sqrt(6 / fan_in).

(plain, untruncated normals, as ``torch.nn.init`` draws them). The same shape and seed
give the same array on every run.

>>> import graphc as gc
>>> W = gc.init.glorot_uniform((64, 32), seed=0)
>>> W.shape, W.dtype, bool(abs(W).max() <= (6 / (64 + 32)) ** 0.5)
((64, 32), dtype('float64'), True)
>>> gc.init.fans((16, 3, 5, 5))
(75, 400)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import HyperparameterError, ShapeError

__all__ = ["fans", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros"]

Seed = int | np.random.Generator


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ShapeError(f"an initializer needs a shape (a tuple of ints), found {shape!r}") from None
    if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ShapeError(
            f"an initializer needs concrete dims (non-negative ints), found {dims!r}; "
            "a param's shape has no symbolic dims"
        )
    return tuple(int(d) for d in dims)


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a param of ``shape`` in graphc's layout (see the module doc)."""
    dims = _shape(shape)
    if len(dims) == 0:
        return 1, 1
    if len(dims) == 1:
        return dims[0], dims[0]
    receptive = math.prod(dims[2:])
    if len(dims) == 2:
        return dims[0], dims[1]
    return dims[1] * receptive, dims[0] * receptive


def _generator(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise HyperparameterError(f"seed must be a non-negative int or a numpy Generator, found {seed!r}")


def _positive(fan: int, shape) -> int:
    if fan <= 0:
        raise ShapeError(f"an initializer cannot scale a param of shape {shape!r}: its fan is 0")
    return fan


def glorot_uniform(shape, seed: Seed = 0) -> np.ndarray:
    """Uniform on [-a, a], a = sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / _positive(fan_in + fan_out, shape))
    return _generator(seed).uniform(-limit, limit, size=_shape(shape))


def glorot_normal(shape, seed: Seed = 0) -> np.ndarray:
    """Normal with mean 0 and standard deviation sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return _generator(seed).normal(0.0, math.sqrt(2.0 / _positive(fan_in + fan_out, shape)), size=_shape(shape))


def he_uniform(shape, seed: Seed = 0) -> np.ndarray:
    """Uniform on [-a, a], a = sqrt(6 / fan_in) (He et al., 2015)."""
    fan_in, _ = fans(shape)
    limit = math.sqrt(6.0 / _positive(fan_in, shape))
    return _generator(seed).uniform(-limit, limit, size=_shape(shape))


def he_normal(shape, seed: Seed = 0) -> np.ndarray:
    """Normal with mean 0 and standard deviation sqrt(2 / fan_in) (He et al., 2015)."""
    fan_in, _ = fans(shape)
    return _generator(seed).normal(0.0, math.sqrt(2.0 / _positive(fan_in, shape)), size=_shape(shape))


def zeros(shape, seed: Seed | None = None) -> np.ndarray:
    """float64 zeros (biases); ``seed`` is accepted, and unused, so that every initializer
    can be called the same way."""
    return np.zeros(_shape(shape))
