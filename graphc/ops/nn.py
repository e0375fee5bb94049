"""Layers as composites: ``layer_norm``, ``batch_norm`` (batch or given statistics), ``dropout``.

Each expands into primitives (means, squares, sqrt, products), so its derivative is the
derivative of its expansion; each keeps a textbook numpy definition for the reference
interpreter. Conventions:

- ``layer_norm`` normalizes over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta,
  with the variance dividing by n (numpy's ``var``), as PyTorch's ``layer_norm`` does;
- ``batch_norm`` uses the statistics of the batch (axis 0, variance dividing by n), or the
  given ``mean`` and ``var`` (``batch_norm_given``: the inference form, its statistics
  usually running averages fed as inputs);
- ``dropout(x, mask, rate)`` is inverted dropout, ``x * mask / (1 - rate)``: the mask is an
  input of 0/1 values drawn by the caller (a seeded generator), so a compiled program stays
  a pure function of its feeds; :data:`INFERENCE_FORMS` says it is the identity at inference.
"""

from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import ShapeError, describe
from .base import Op, register

__all__ = ["INFERENCE_FORMS"]

# op -> the operand whose value the op is at inference (prog.predict): dropout passes x on
INFERENCE_FORMS = {"dropout": 0}


def _check_eps(attrs, node, op):
    eps = attrs.get("eps")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ShapeError(f"{describe(node, op)}: eps must be a number > 0, found {eps!r}")


def _features(name: str, shape, want, node, op):
    if tuple(shape) != tuple(want):
        raise ShapeError(f"{describe(node, op)}: {name} has shape {shapes.fmt(shape)}, expected {shapes.fmt(want)} "
                         "(one value per feature)")


def _layer_norm_shape(arg_shapes, attrs, node=None, op=None):
    x, gamma, beta = arg_shapes
    if not x:
        raise ShapeError(f"{describe(node, op)}: layer_norm needs rank >= 1 (features on the last axis), found ()")
    _check_eps(attrs, node, op)
    _features("gamma", gamma, x[-1:], node, op)
    _features("beta", beta, x[-1:], node, op)
    return tuple(x)


def _normalized(x, mean, var, gamma, beta, eps):
    ed = x.editor
    scale = ed.add("sqrt", [var + eps])
    return (x - mean) / scale * gamma + beta


def _expand_layer_norm(args, attrs):
    x, gamma, beta = args
    ed = x.editor
    last = len(x.shape) - 1
    mean = ed.add("mean", [x], {"axis": last, "keepdims": True})
    var = ed.add("mean", [ed.add("square", [x - mean])], {"axis": last, "keepdims": True})
    return _normalized(x, mean, var, gamma, beta, float(attrs["eps"]))


def _reference_layer_norm(values, attrs):
    x, gamma, beta = values
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + attrs["eps"]) * gamma + beta


register(Op(
    "layer_norm", 3, _layer_norm_shape, attrs={"eps": 1e-5}, expand=_expand_layer_norm,
    reference=_reference_layer_norm, function="layer_norm", operand_names=("x", "gamma", "beta"),
    doc="(x - mean) / sqrt(var + eps) * gamma + beta over the last axis (var divides by n)",
))


def _batch_norm_shape(arg_shapes, attrs, node=None, op=None):
    x, gamma, beta, *given = arg_shapes
    if len(x) < 2:
        raise ShapeError(f"{describe(node, op)}: batch_norm needs rank >= 2 (the batch on axis 0), "
                         f"found {shapes.fmt(x)}")
    _check_eps(attrs, node, op)
    for name, shape in zip(("gamma", "beta", "mean", "var"), (gamma, beta, *given)):
        _features(name, shape, x[1:], node, op)
    return tuple(x)


def _expand_batch_norm(args, attrs):
    x, gamma, beta = args
    ed = x.editor
    mean = ed.add("mean", [x], {"axis": 0, "keepdims": False})
    var = ed.add("mean", [ed.add("square", [x - mean])], {"axis": 0, "keepdims": False})
    return _normalized(x, mean, var, gamma, beta, float(attrs["eps"]))


def _expand_batch_norm_given(args, attrs):
    # the gradient is the function's own: running statistics fed as inputs are not asked one
    x, gamma, beta, mean, var = args
    return _normalized(x, mean, var, gamma, beta, float(attrs["eps"]))


def _reference_batch_norm(values, attrs):
    x, gamma, beta, *given = values
    mean, var = given if given else (x.mean(axis=0), ((x - x.mean(axis=0)) ** 2).mean(axis=0))
    return (x - mean) / np.sqrt(var + attrs["eps"]) * gamma + beta


register(Op(
    "batch_norm", 3, _batch_norm_shape, attrs={"eps": 1e-5}, expand=_expand_batch_norm,
    reference=_reference_batch_norm,
    doc="(x - mean) / sqrt(var + eps) * gamma + beta with the batch's statistics (axis 0, var divides by n)",
))
register(Op(
    "batch_norm_given", 5, _batch_norm_shape, attrs={"eps": 1e-5}, expand=_expand_batch_norm_given,
    reference=_reference_batch_norm,
    doc="(x - mean) / sqrt(var + eps) * gamma + beta with given statistics mean and var",
))


def _dropout_shape(arg_shapes, attrs, node=None, op=None):
    x, mask = arg_shapes
    rate = attrs.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ShapeError(f"{describe(node, op)}: rate must be a number in [0, 1), found {rate!r}")
    out = shapes.broadcast([x, mask], node, op)
    if tuple(out) != tuple(x):
        raise ShapeError(f"{describe(node, op)}: the mask of shape {shapes.fmt(mask)} must broadcast to x's "
                         f"shape {shapes.fmt(x)}")
    return tuple(x)


def _expand_dropout(args, attrs):
    x, mask = args
    keep = 1.0 - float(attrs["rate"])
    return x * mask * (1.0 / keep)


register(Op(
    "dropout", 2, _dropout_shape, attrs={"rate": None}, expand=_expand_dropout, function="dropout",
    operand_names=("x", "mask"), required=("rate",),
    reference=lambda values, attrs: values[0] * values[1] / (1.0 - attrs["rate"]),
    doc="inverted dropout x * mask / (1 - rate), mask an input of 0/1 values; the identity at inference",
))
