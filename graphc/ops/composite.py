"""Composite ops: softmax, log_softmax, logsumexp and the losses.

Each keeps its shape rule here and expands, in the ``expand`` stage, into primitives in
its numerically stable form (a max shift behind ``stop_gradient``; cross-entropy through
logsumexp), so that differentiation and lowering only ever see primitives. Losses average
as the lecture's J = 1/n sum L: ``mse`` and ``bce`` over all elements,
``softmax_cross_entropy`` over rows.
"""

from __future__ import annotations

import numpy as np

from .. import shapes
from ..errors import GraphError, ShapeError, describe
from .base import Op, register
from .labels import labels_shape
from .tensor import _reduce_shape, normalize_axes


def _same_shape(arg_shapes, attrs, node=None, op=None):
    return arg_shapes[0]


def _loss_shape(arg_shapes, attrs, node=None, op=None):
    pred, target = arg_shapes
    if op == "softmax_cross_entropy" and pred and len(target) == len(pred) - 1:  # int class labels
        axis = normalize_axes(attrs.get("axis"), len(pred), node, op)[0]
        if tuple(target) != labels_shape(pred, axis):
            raise ShapeError(
                f"{describe(node, op)}: labels of shape {shapes.fmt(target)} do not match logits of shape "
                f"{shapes.fmt(pred)}: one label per row is shape {shapes.fmt(labels_shape(pred, axis))}"
            )
        return ()
    if tuple(pred) != tuple(target):
        raise ShapeError(
            f"{describe(node, op)}: the prediction has shape {shapes.fmt(pred)} but the target has "
            f"shape {shapes.fmt(target)}; a loss compares equal shapes (reshape one, e.g. to (N, 1))"
        )
    if op == "softmax_cross_entropy" and not pred:
        raise ShapeError(f"{describe(node, op)}: logits need rank >= 1 (classes on the last axis), found ()")
    return ()


def _max_shift(x, axis):
    """max(x) over ``axis`` (kept), behind stop_gradient: the shift changes no value."""
    ed = x.editor
    return ed.add("stop_gradient", [ed.add("max", [x], {"axis": axis, "keepdims": True})])


def _logsumexp_of(x, axis, keepdims):
    return x.editor.add("logsumexp", [x], {"axis": axis, "keepdims": keepdims})


def _expand_logsumexp(args, attrs):
    (x,) = args
    ed = x.editor
    axis, keep = attrs["axis"], attrs["keepdims"]
    shift = _max_shift(x, axis)
    kept = ed.add("log", [ed.sum(ed.add("exp", [x - shift]), axis=axis, keepdims=True)]) + shift
    if keep:
        return kept
    return ed.reshape(kept, _reduce_shape([x.shape], attrs))


def _expand_softmax(args, attrs):
    (x,) = args
    ed = x.editor
    e = ed.add("exp", [x - _max_shift(x, attrs["axis"])])
    return e / ed.sum(e, axis=attrs["axis"], keepdims=True)


def _expand_log_softmax(args, attrs):
    (x,) = args
    return x - _logsumexp_of(x, attrs["axis"], True)


def _expand_softmax_cross_entropy(args, attrs):
    # -sum(y * log_softmax(z)) = logsumexp(z) * sum(y) - sum(y * z), exact for any labels:
    # soft or learnable rows need not sum to 1, and d/dy is -log_softmax(z) for every row.
    # This form costs one row sum of y more than logsumexp(z) - sum(y * z), which holds only
    # for rows summing to 1; -sum(y * (z - logsumexp(z))) would cost an op per element more,
    # forward and backward. Int labels are one-hot: sum(y) = 1, and no gradient flows into them.
    logits, target = args
    ed = logits.editor
    axis = attrs["axis"]
    if len(target.shape) < len(logits.shape):  # int labels: the logit of each row's class
        dtype = ed.graph.nodes[target.id]["dtype"]
        if np.dtype(dtype).kind not in "iu":
            raise GraphError(f"{describe(target.id)}: labels of shape {shapes.fmt(target.shape)} (one class per row) "
                             f"must be int64, found {dtype}; declare the input dtype='int64', or give one-hot "
                             "rows of the logits' shape")
        picked = ed.add("pick", [logits, target], {"axis": axis})
        return ed.add("mean", [_logsumexp_of(logits, axis, False) - picked])
    picked = ed.sum(target * logits, axis=axis)
    return ed.add("mean", [_logsumexp_of(logits, axis, False) * ed.sum(target, axis=axis) - picked])


def _expand_mean_of(term):
    def expand(args, attrs):
        ed = args[0].editor
        return ed.add("mean", [ed.add(term, args)])

    return expand


# Direct numpy definitions, for the reference interpreter: the textbook formulas, written
# apart from the expansions above so that the interpreter checks those expansions.
def _logsumexp(x, axis, keepdims):
    axes = normalize_axes(axis, x.ndim)
    peak = np.max(x, axis=axes, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)  # a row of -inf sums to 0: log 0 = -inf
    out = np.log(np.sum(np.exp(x - peak), axis=axes, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axes)


def _log_softmax(x, axis):
    return x - _logsumexp(x, axis, True)


def _reference_bce(values, attrs):
    p, y = values
    return np.mean(-(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100)))


def _reference_softmax_cross_entropy(values, attrs):
    logits, target = values
    axis = normalize_axes(attrs["axis"], logits.ndim)
    if target.ndim < logits.ndim:  # int labels: their one-hot rows
        classes = logits.shape[axis[0]]
        target = np.moveaxis(np.eye(classes)[target.astype(np.int64)], -1, axis[0])
    return np.mean(-np.sum(target * _log_softmax(logits, axis), axis=axis))


def _check_axis_shape(rule):
    def shape(arg_shapes, attrs, node=None, op=None):
        normalize_axes(attrs.get("axis"), len(arg_shapes[0]), node, op)
        return rule(arg_shapes, attrs, node, op)

    return shape


register(Op("softmax", 1, _check_axis_shape(_same_shape), attrs={"axis": -1}, expand=_expand_softmax,
            reference=lambda values, attrs: np.exp(_log_softmax(values[0], attrs["axis"])),
            doc="exp(x - max) / sum(exp(x - max)) over axis", function="softmax"))
register(Op("log_softmax", 1, _check_axis_shape(_same_shape), attrs={"axis": -1},
            expand=_expand_log_softmax, doc="x - logsumexp(x) over axis", function="log_softmax",
            reference=lambda values, attrs: _log_softmax(values[0], attrs["axis"])))
register(Op("logsumexp", 1, _reduce_shape, attrs={"axis": None, "keepdims": False},
            expand=_expand_logsumexp, doc="log(sum(exp(x))) over axes, with the max shift", function="logsumexp",
            reference=lambda values, attrs: _logsumexp(values[0], attrs["axis"], attrs["keepdims"])))
def _expand_mse(args, attrs):
    # square(pred - y), not one squared_error op: the backward pass then reuses pred - y
    pred, target = args
    ed = pred.editor
    return ed.add("mean", [ed.add("square", [pred - target])])


register(Op("mse", 2, _loss_shape, expand=_expand_mse, doc="mean over all elements of (pred - y)**2",
            function="mse", operand_names=("pred", "target"),
            reference=lambda values, attrs: np.mean((values[0] - values[1]) ** 2)))
register(Op("bce", 2, _loss_shape, expand=_expand_mean_of("bce_terms"), reference=_reference_bce,
            doc="binary cross-entropy of probabilities p, mean over all elements",
            function="bce", operand_names=("p", "target")))
register(Op("bce_with_logits", 2, _loss_shape, expand=_expand_mean_of("bce_logits_terms"),
            reference=lambda values, attrs: np.mean(np.logaddexp(0, values[0]) - values[1] * values[0]),
            doc="binary cross-entropy of sigmoid(z) from logits z, mean over all elements",
            function="bce_with_logits", operand_names=("logits", "target")))
register(Op("softmax_cross_entropy", 2, _check_axis_shape(_loss_shape), attrs={"axis": -1},
            expand=_expand_softmax_cross_entropy, reference=_reference_softmax_cross_entropy,
            doc="cross-entropy of softmax(logits) against label rows (soft or one-hot) or int64 labels, mean over rows",
            function="softmax_cross_entropy", operand_names=("logits", "labels"), int_operands=(1,)))
