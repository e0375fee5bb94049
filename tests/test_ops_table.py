"""Every op of the table, compiled and run, against a numpy reference written here.

The test is parametrized over ``graphc.ops.OPS``: a new built-in op without an entry in
``REFERENCES`` fails with "no reference for op X". Custom ops that other tests register
(``builtin=False``) are skipped. Each case declares small inputs, builds the op through
the public API (or, for ``fused``, a raw networkx graph), compiles it with ``gc.compile``
and compares ``prog.forward`` with numpy; every stage of the program must verify.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import conv_reference as conv
import networkx as nx
import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.ops import OPS


# -- inputs ---------------------------------------------------------------------------------
def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def probability(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def onehot(rng, shape):
    rows = int(np.prod(shape[:-1]))
    eye = np.eye(shape[-1])[rng.integers(0, shape[-1], rows)]
    return eye.reshape(shape)


def fixed(values):
    array = np.asarray(values, dtype=np.float64)
    return lambda rng, shape: array[: int(np.prod(shape))].reshape(shape)


@dataclass(frozen=True)
class Case:
    """``build(*input nodes) -> node`` over inputs of ``shapes``; ``ref(*arrays)`` in numpy."""

    id: str
    shapes: tuple
    build: Callable
    ref: Callable
    domains: tuple = ()
    exact: bool = False  # compare with ==, for closed forms

    def draw(self, rng):
        return [(self.domains[k] if k < len(self.domains) else normal)(rng, s) for k, s in enumerate(self.shapes)]


# -- independent numpy references -------------------------------------------------------------
def np_sigmoid(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def np_softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


np_erf = np.vectorize(math.erf, otypes=[np.float64])  # the standard library's, one number at a time


def np_gelu(x):
    return x / 2 * (1 + np_erf(x / math.sqrt(2)))


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_bce_terms(p, y):
    with np.errstate(divide="ignore"):
        return -(y * np.maximum(np.log(p), -100.0) + (1 - y) * np.maximum(np.log(1 - p), -100.0))


def np_bce_logits_terms(z, y):
    return np_softplus(z) - y * z


def np_sce(z, y, axis=-1):
    return np.mean(np_logsumexp(z, axis=axis) - np.sum(y * z, axis=axis))


def np_layer_norm(x, gamma, beta, eps):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * gamma + beta


BROADCASTS = (("same", (2, 3), (2, 3)), ("row", (2, 3), (3,)), ("outer", (2, 1), (1, 3)), ("scalar", (), (2, 3)))


def unary(function, ref, domain=normal, extra=()):
    return [Case("matrix", ((2, 3),), function, ref, (domain,)),
            Case("scalar", ((),), function, ref, (domain,)), *extra]


def binary(function, ref, a=normal, b=normal, extra=()):
    return [Case(name, (sa, sb), function, ref, (a, b)) for name, sa, sb in BROADCASTS] + list(extra)


def reductions(function, ref):
    cases = []
    for axis in (None, 0, -1, (0, 2)):
        for keep in (False, True):
            cases.append(Case(
                f"axis={axis}-keepdims={keep}", ((2, 3, 4),),
                lambda x, axis=axis, keep=keep: function(x, axis=axis, keepdims=keep),
                lambda x, axis=axis, keep=keep: ref(x, axis=axis, keepdims=keep),
            ))
    return cases


def fused_case() -> Case:
    """A raw ``fused`` node: its own expression over its operands."""
    a0, a1 = sympy.symbols("a0 a1", real=True)

    def build(a, b):
        graph = nx.MultiDiGraph(name="fused")
        graph.add_node("a", op="input", shape=a.shape)
        graph.add_node("b", op="input", shape=b.shape)
        graph.add_node("f", op="fused", attrs={"kink": ""}, expr=(a0 * sympy.exp(a1) - a0, (a0, a1)))
        graph.add_edge("a", "f", arg=0)
        graph.add_edge("b", "f", arg=1)
        return graph

    return Case("raw-expr", ((2, 3), (3,)), build, lambda a, b: a * np.exp(b) - a)


EXTREME = fixed([-1000.0, -800.0, -1.0, 0.0, 1.0, 800.0, 1000.0])

REFERENCES: dict[str, list[Case]] = {
    "input": [Case("fed", ((2, 3),), lambda x: x, lambda x: x)],
    "param": [Case("fed", ((2, 3),), None, lambda x: x)],  # built by _param_graph
    "const": [Case("array", ((2, 3),), None, lambda x: x)],  # built by _const_graph
    "neg": unary(gc.neg, np.negative),
    "identity": unary(gc.identity, lambda x: x),
    "square": unary(gc.square, np.square),
    "sqrt": unary(gc.sqrt, np.sqrt, positive),
    "exp": unary(gc.exp, np.exp),
    "log": unary(gc.log, np.log, positive),
    "log1p": unary(gc.log1p, np.log1p, fixed([1e-12, -0.5, 3.0, 1e-300, 0.0, 2.0])),
    "sin": unary(gc.sin, np.sin),
    "cos": unary(gc.cos, np.cos),
    "abs": unary(gc.abs, np.abs),
    "relu": unary(gc.relu, lambda x: np.where(x > 0, x, 0.0),
                  extra=[Case("zero", ((3,),), gc.relu, lambda x: np.maximum(x, 0.0), (fixed([-1.0, 0.0, 2.0]),))]),
    "leaky_relu": unary(gc.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x), extra=[
        Case("alpha=0.2", ((2, 3),), lambda x: gc.leaky_relu(x, alpha=0.2), lambda x: np.where(x >= 0, x, 0.2 * x)),
    ]),
    "sigmoid": unary(gc.sigmoid, np_sigmoid, extra=[Case("stable", ((7,),), gc.sigmoid, np_sigmoid, (EXTREME,))]),
    "tanh": unary(gc.tanh, np.tanh, extra=[Case("stable", ((7,),), gc.tanh, np.tanh, (EXTREME,))]),
    "softplus": unary(gc.softplus, np_softplus, extra=[
        Case("stable", ((7,),), gc.softplus, np_softplus, (EXTREME,)),
    ]),
    "erf": unary(gc.erf, np_erf, extra=[
        Case("every-piece", ((16,),), gc.erf, np_erf,
             (fixed([-7.0, -5.5, -4.2, -3.1, -2.0, -1.0, -0.99, -1e-300, 0.0, 0.3, 1.5, 2.5, 3.5, 4.5, 5.99, 9.0]),)),
    ]),
    "gelu": unary(gc.gelu, np_gelu, extra=[
        Case("tails", ((6,),), gc.gelu, np_gelu, (fixed([-40.0, -8.0, -1.0, 0.0, 3.0, 40.0]),)),
    ]),
    # convolution and pooling against the one-element-at-a-time loops of tests/conv_reference.py
    "conv2d": [
        Case("plain", ((2, 3, 5, 4), (2, 3, 3, 2)), gc.conv2d, conv.conv2d),
        Case("stride-pad-dilation", ((2, 2, 7, 6), (3, 2, 3, 2)),
             lambda x, w: gc.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
             lambda x, w: conv.conv2d(x, w, (2, 1), (1, 2), (2, 1))),
        Case("1x1", ((1, 4, 3, 3), (2, 4, 1, 1)), gc.conv2d, conv.conv2d),
        Case("NHWC", ((2, 5, 4, 3), (2, 3, 3, 2)), lambda x, w: gc.conv2d(x, w, padding=1, layout="NHWC"),
             lambda x, w: conv.conv2d(x.transpose(0, 3, 1, 2), w, 1, 1).transpose(0, 2, 3, 1)),
    ],
    # conv2d's parts, as its expansion and gradients use them
    "conv2d_patches": [
        Case("stride-pad-dilation", ((2, 2, 7, 6),),
             lambda x: gc.apply("conv2d_patches", x, kernel=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
             lambda x: conv.patches(x, (3, 2), (2, 1), (1, 2), (2, 1))),
    ],
    "conv2d_patches_grad": [
        Case("stride-pad-dilation", ((12, 2, 14),),
             lambda d: gc.apply("conv2d_patches_grad", d, kernel=(3, 2), stride=(2, 1), padding=(1, 2),
                                dilation=(2, 1), shape=(5, 4)),
             lambda d: conv.patches_grad(d, (5, 4), (3, 2), (2, 1), (1, 2), (2, 1))),
        # a stride that skips the last row: its cotangent is 0
        Case("stride-skips", ((4, 1, 4),), lambda d: gc.apply("conv2d_patches_grad", d, kernel=2, stride=2,
                                                               shape=(5, 5)),
             lambda d: conv.patches_grad(d, (5, 5), 2, 2)),
    ],
    "conv2d_matmul": [
        Case("2x3-map", ((12, 2, 6), (3, 2, 3, 2)), lambda p, w: gc.apply("conv2d_matmul", p, w, size=(2, 3)),
             lambda p, w: conv.conv_matmul(p, w, (2, 3))),
    ],
    "conv2d_matmul_grad_patches": [
        Case("2x3-map", ((2, 3, 2, 3), (3, 2, 3, 2)), lambda g, w: gc.apply("conv2d_matmul_grad_patches", g, w),
             conv.conv_matmul_grad_patches),
    ],
    "conv2d_matmul_grad_kernel": [
        Case("2x3-map", ((12, 2, 6), (2, 3, 2, 3)),
             lambda p, g: gc.apply("conv2d_matmul_grad_kernel", p, g, shape=(3, 2, 3, 2)),
             lambda p, g: conv.conv_matmul_grad_kernel(p, g, (3, 2, 3, 2))),
    ],
    "max_pool2d": [
        Case("2x2", ((2, 3, 4, 6),), gc.max_pool2d, conv.pool),
        Case("3x2-overlapping", ((1, 2, 5, 5),), lambda x: gc.max_pool2d(x, kernel=(3, 2), stride=1),
             lambda x: conv.pool(x, (3, 2), 1)),
        Case("odd-size", ((1, 1, 5, 5),), gc.max_pool2d, conv.pool),
    ],
    "max_pool2d_grad": [
        Case("overlapping", ((1, 2, 5, 5), (1, 2, 3, 4)),
             lambda x, g: gc.apply("max_pool2d_grad", x, gc.max_pool2d(x, kernel=(3, 2), stride=1), g,
                                   kernel=(3, 2), stride=1),
             lambda x, g: conv.max_pool2d_grad(x, g, (3, 2), 1)),
        # ties: a window of equal values gives its whole gradient to its first element
        Case("ties", ((1, 1, 2, 4), (1, 1, 1, 2)), lambda x, g: gc.apply("max_pool2d_grad", x, gc.max_pool2d(x), g),
             lambda x, g: conv.max_pool2d_grad(x, g), (fixed([1, 1, 2, 3, 1, 1, 3, 0]), fixed([2.0, 5.0]))),
    ],
    "avg_pool2d": [
        Case("2x2", ((2, 3, 4, 6),), gc.avg_pool2d, lambda x: conv.pool(x, combine=conv.mean)),
        Case("3x2-stride1", ((1, 2, 5, 5),), lambda x: gc.avg_pool2d(x, kernel=(3, 2), stride=1),
             lambda x: conv.pool(x, (3, 2), 1, combine=conv.mean)),
    ],
    "avg_pool2d_grad": [
        Case("overlapping", ((1, 2, 3, 4),),
             lambda g: gc.apply("avg_pool2d_grad", g, kernel=(3, 2), stride=1, shape=(5, 5)),
             lambda g: conv.avg_pool2d_grad(g, (5, 5), (3, 2), 1)),
    ],
    "add": binary(gc.add, np.add),
    "sub": binary(gc.sub, np.subtract),
    "mul": binary(gc.mul, np.multiply),
    "div": binary(gc.div, np.divide, b=positive),
    "pow": binary(gc.pow, np.power, a=positive),
    "maximum": binary(gc.maximum, np.maximum),
    "squared_error": binary(lambda a, b: gc.apply("squared_error", a, b), lambda a, b: (a - b) ** 2),
    "bce_terms": binary(lambda p, y: gc.apply("bce_terms", p, y), np_bce_terms, a=probability, b=probability),
    "bce_logits_terms": binary(lambda z, y: gc.apply("bce_logits_terms", z, y), np_bce_logits_terms,
                               b=probability),
    "matmul": [
        Case("2d@2d", ((2, 3), (3, 4)), gc.matmul, np.matmul),
        Case("batch@2d", ((5, 2, 3), (3, 4)), gc.matmul, np.matmul),
        Case("2d@1d", ((2, 3), (3,)), gc.matmul, np.matmul),
        Case("1d@2d", ((3,), (3, 4)), gc.matmul, np.matmul),
        Case("operator", ((2, 3), (3, 4)), lambda a, b: a @ b, np.matmul),
    ],
    "transpose": [
        Case("reverse", ((2, 3, 4),), gc.transpose, np.transpose),
        Case("axes", ((2, 3, 4),), lambda x: gc.transpose(x, (1, 0, 2)), lambda x: np.transpose(x, (1, 0, 2))),
        Case(".T", ((2, 3),), lambda x: x.T, lambda x: x.T),
    ],
    "reshape": [
        Case("flatten", ((2, 3, 4),), lambda x: gc.reshape(x, (6, 4)), lambda x: x.reshape(6, 4)),
        Case("to-scalar", ((1, 1),), lambda x: gc.reshape(x, ()), lambda x: x.reshape(())),
    ],
    "sum": reductions(gc.sum, np.sum),
    "mean": reductions(gc.mean, np.mean),
    "max": reductions(gc.max, np.max),
    "broadcast": [
        Case("row", ((3,),), lambda x: gc.broadcast_to(x, (2, 3)), lambda x: np.broadcast_to(x, (2, 3))),
        Case("column", ((2, 1),), lambda x: gc.broadcast_to(x, (4, 2, 3)), lambda x: np.broadcast_to(x, (4, 2, 3))),
    ],
    "stop_gradient": unary(gc.stop_gradient, lambda x: x),
    "zeros_like": [Case("matrix", ((2, 3),), lambda x: gc.apply("zeros_like", x), np.zeros_like)],
    "softmax": [
        Case("last", ((2, 3),), gc.softmax, np_softmax),
        Case("axis0", ((2, 3),), lambda x: gc.softmax(x, axis=0), lambda x: np_softmax(x, axis=0)),
        Case("stable", ((1, 7),), gc.softmax, np_softmax, (EXTREME,)),
    ],
    "log_softmax": [
        Case("last", ((2, 3),), gc.log_softmax, lambda x: x - np_logsumexp(x, axis=-1, keepdims=True)),
        Case("axis0", ((2, 3),), lambda x: gc.log_softmax(x, axis=0),
             lambda x: x - np_logsumexp(x, axis=0, keepdims=True)),
        Case("stable", ((1, 7),), gc.log_softmax, lambda x: x - np_logsumexp(x, axis=-1, keepdims=True),
             (EXTREME,)),
    ],
    "logsumexp": reductions(gc.logsumexp, np_logsumexp)[:4] + [
        Case("stable", ((7,),), gc.logsumexp, np_logsumexp, (EXTREME,)),
        # closed forms: logsumexp(1000, 1000) = 1000 + log 2; of (-1000, -1000): -1000 + log 2
        Case("closed-form", ((2, 2),), lambda x: gc.logsumexp(x, axis=1),
             lambda x: np.array([1000.0, -1000.0]) + np.log(2.0), (fixed([1000, 1000, -1000, -1000]),)),
    ],
    "mse": [
        Case("matrix", ((4, 3), (4, 3)), gc.mse, lambda g, y: np.mean((g - y) ** 2)),
        Case("scalar", ((), ()), gc.mse, lambda g, y: (g - y) ** 2),
    ],
    "bce": [
        Case("matrix", ((4, 3), (4, 3)), gc.bce, lambda p, y: np.mean(np_bce_terms(p, y)), (probability, probability)),
        # p in {0, 1}: finite (the logs are clamped at -100); right labels cost exactly 0
        Case("p-0-1-right", ((4,), (4,)), gc.bce, lambda p, y: 0.0,
             (fixed([0.0, 1.0, 0.0, 1.0]), fixed([0.0, 1.0, 0.0, 1.0])), exact=True),
        Case("p-0-1-wrong", ((2,), (2,)), gc.bce, lambda p, y: 100.0,
             (fixed([0.0, 1.0]), fixed([1.0, 0.0])), exact=True),
    ],
    "bce_with_logits": [
        Case("matrix", ((4, 3), (4, 3)), gc.bce_with_logits, lambda z, y: np.mean(np_bce_logits_terms(z, y)),
             (normal, probability)),
        # z = +-1000: exactly 0 when right, exactly 1000 when wrong
        Case("stable", ((4,), (4,)), gc.bce_with_logits, lambda z, y: 500.0,
             (fixed([1000.0, -1000.0, 1000.0, -1000.0]), fixed([1.0, 0.0, 0.0, 1.0])), exact=True),
    ],
    "softmax_cross_entropy": [
        Case("rows", ((5, 4), (5, 4)), gc.softmax_cross_entropy, np_sce, (normal, onehot)),
        Case("axis0", ((4, 5), (4, 5)), lambda z, y: gc.softmax_cross_entropy(z, y, axis=0),
             lambda z, y: np_sce(z, y, axis=0), (normal, lambda rng, s: onehot(rng, s[::-1]).T)),
        # logits +-1000: the right class costs exactly 0, the wrong one exactly 2000
        Case("stable", ((2, 2), (2, 2)), gc.softmax_cross_entropy, lambda z, y: 1000.0,
             (fixed([1000.0, -1000.0, 1000.0, -1000.0]), fixed([1.0, 0.0, 0.0, 1.0])), exact=True),
    ],
    "fused": [fused_case()],
    # indexing and joining (issue 13): numpy's own indexing is the reference
    "index": [
        Case("column", ((3, 4),), lambda x: x[:, 0], lambda x: x[:, 0]),
        Case("rows", ((4, 3),), lambda x: x[1:3], lambda x: x[1:3]),
        Case("step-negative", ((5, 2),), lambda x: x[::-2, 1], lambda x: x[::-2, 1]),
        Case("ellipsis-newaxis", ((2, 3, 4),), lambda x: x[..., None, -1], lambda x: x[..., None, -1]),
        Case("scalar", ((2, 3),), lambda x: x[1, 2], lambda x: x[1, 2]),
    ],
    "index_grad": [Case("column", ((3,),), lambda g: gc.apply("index_grad", g, index=(("slice", None, None, None), 1),
                                                               shape=(3, 4)),
                        lambda g: np.stack([np.zeros(3), g, np.zeros(3), np.zeros(3)], axis=1))],
    "take": [
        Case("rows-repeated", ((3, 4),), lambda x: x[[2, 0, 2]], lambda x: np.stack([x[2], x[0], x[2]])),
        Case("axis1-2d-index", ((2, 3),), lambda x: x[:, np.array([[0, 2], [1, 1]])],
             lambda x: np.stack([np.stack([x[:, 0], x[:, 2]], 1), np.stack([x[:, 1], x[:, 1]], 1)], 1)),
    ],
    "take_grad": [Case("repeated", ((3, 2),), lambda g: gc.apply("take_grad", g, indices=np.array([1, 0, 1]), axis=0,
                                                                  shape=(2, 2)),
                       lambda g: np.stack([g[1], g[0] + g[2]]))],
    "concat": [
        Case("axis1", ((2, 3), (2, 1)), lambda a, b: gc.concat([a, b], axis=1), lambda a, b: np.hstack([a, b])),
        Case("three-axis0", ((1, 2), (2, 2), (1, 2)), lambda a, b, c: gc.concat([a, b, c]),
             lambda a, b, c: np.vstack([a, b, c])),
    ],
    "stack": [
        Case("axis0", ((2, 3), (2, 3)), lambda a, b: gc.stack([a, b]), lambda a, b: np.array([a, b])),
        Case("last", ((3,), (3,), (3,)), lambda a, b, c: gc.stack([a, b, c], axis=-1),
             lambda a, b, c: np.array([a, b, c]).T),
    ],
    # comparisons give booleans; where selects (compared as 0/1 floats)
    "less": [Case("row", ((2, 3), (3,)), lambda a, b: a < b, lambda a, b: (a - b < 0).astype(float))],
    "less_equal": [Case("ties", ((3,), (3,)), lambda a, b: a <= b, lambda a, b: 1.0 - (a - b > 0),
                        (fixed([1.0, 2.0, 3.0]), fixed([2.0, 2.0, 2.0])))],
    "greater": [Case("number", ((2, 3),), lambda a: a > 0, lambda a: (np.sign(a) == 1).astype(float))],
    "greater_equal": [Case("ties", ((3,), (3,)), lambda a, b: a >= b, lambda a, b: 1.0 - (a - b < 0),
                           (fixed([1.0, 2.0, 3.0]), fixed([2.0, 2.0, 2.0])))],
    "where": [
        Case("relu-like", ((2, 3),), lambda x: gc.where(x > 0, x, 0.0), lambda x: (x + np.abs(x)) / 2),
        Case("broadcast", ((2, 3), (3,), (2, 1)), lambda c, a, b: gc.where(c > 0, a, b),
             lambda c, a, b: [[a[j] if c[i, j] > 0 else b[i, 0] for j in range(3)] for i in range(2)]),
    ],
    "argmax": [
        Case("last", ((3, 4),), gc.argmax, lambda x: [list(row).index(max(row)) for row in x]),
        Case("axis0-ties-first", ((2, 2),), lambda x: gc.argmax(x, axis=0), lambda x: [0, 1],
             (fixed([1.0, 0.0, 1.0, 2.0]),), exact=True),
    ],
    # labels from argmax: int64 values the op reads as indices
    "pick": [Case("rows", ((3, 4), (3, 4)), lambda z, s: gc.apply("pick", z, gc.argmax(s)),
                  lambda z, s: np.array([z[i, list(s[i]).index(max(s[i]))] for i in range(3)]))],
    "pick_grad": [Case("rows", ((3,), (3, 4)), lambda g, s: gc.apply("pick_grad", g, gc.argmax(s), shape=(3, 4)),
                       lambda g, s: np.array([[g[i] if j == list(s[i]).index(max(s[i])) else 0.0 for j in range(4)]
                                              for i in range(3)]))],
    # layers: the formulas written out here
    "layer_norm": [Case("rows", ((3, 4), (4,), (4,)), gc.layer_norm, lambda x, g, b: np_layer_norm(x, g, b, 1e-5)),
                   Case("eps=0.1-3d", ((2, 3, 4), (4,), (4,)), lambda x, g, b: gc.layer_norm(x, g, b, eps=0.1),
                        lambda x, g, b: np_layer_norm(x, g, b, 0.1))],
    "batch_norm": [Case("batch", ((5, 3), (3,), (3,)), gc.batch_norm,
                        lambda x, g, b: (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * g + b)],
    "batch_norm_given": [Case("given", ((5, 3), (3,), (3,), (3,), (3,)),
                              lambda x, g, b, m, v: gc.batch_norm(x, g, b, mean=m, var=v),
                              lambda x, g, b, m, v: (x - m) / np.sqrt(v + 1e-5) * g + b,
                              (normal, normal, normal, normal, positive))],
    "dropout": [Case("inverted", ((3, 4), (3, 4)), lambda x, m: gc.dropout(x, m, 0.25), lambda x, m: x * m / 0.75,
                     (normal, lambda rng, s: (rng.uniform(size=s) > 0.25) * 1.0))],
    "min": reductions(gc.min, lambda x, axis, keepdims: -np.max(-x, axis=axis, keepdims=keepdims)),
    "var": reductions(gc.var, lambda x, axis, keepdims: np.mean((x - np.mean(x, axis, keepdims=True)) ** 2,
                                                                axis, keepdims=keepdims)) + [
        Case("ddof=1", ((5, 2),), lambda x: gc.var(x, axis=0, ddof=1),
             lambda x: ((x - x.mean(0)) ** 2).sum(0) / 4),
    ],
    "std": reductions(gc.std, lambda x, axis, keepdims: np.sqrt(np.mean((x - np.mean(x, axis, keepdims=True)) ** 2,
                                                                        axis, keepdims=keepdims))) + [
        Case("ddof=1", ((5, 2),), lambda x: gc.std(x, axis=0, ddof=1),
             lambda x: np.sqrt(((x - x.mean(0)) ** 2).sum(0) / 4)),
    ],
}


# -- running a case -------------------------------------------------------------------------
def build_graph(op_name: str, case: Case, arrays):
    """The graph of one case: inputs ``i0, i1..`` of the case's shapes, output ``out``."""
    if op_name == "param":
        g = gc.Graph(op_name)
        g.output("out", g.param("i0", shape=case.shapes[0]))
        return g
    if op_name == "const":
        g = gc.Graph(op_name)
        x = g.input("x", shape=())
        g.output("out", g.const(arrays[0]) + 0 * x)
        return g
    if op_name == "fused":
        return case.build(*arrays)
    g = gc.Graph(op_name)
    nodes = [g.input(f"i{k}", shape=s) for k, s in enumerate(case.shapes)]
    g.output("out", case.build(*nodes))
    return g


def run_case(op_name: str, case: Case, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = case.draw(rng)
    graph = build_graph(op_name, case, arrays)
    prog = gc.compile(graph)
    for stage, stage_graph in prog.stages.items():
        try:
            gc.verify(stage_graph)
        except gc.GraphcError as error:  # pragma: no cover - the message is the point
            raise AssertionError(f"stage {stage!r} does not verify: {error}") from error
    names = prog.graph.graph["inputs"] + prog.graph.graph["params"]
    feeds = {"x": 0.0} if op_name == "const" else dict(zip(names, arrays))
    with np.errstate(divide="ignore", over="ignore"):
        got = prog.forward(feeds)["out" if op_name != "fused" else "f"]
    return got, np.asarray(case.ref(*arrays), dtype=np.float64)


def case_ids(op_name: str) -> list[str]:
    return [case.id for case in REFERENCES.get(op_name, [])]


@pytest.mark.parametrize("op_name", sorted(OPS))
def test_op_against_numpy(op_name):
    op = OPS[op_name]
    if not op.builtin:
        pytest.skip(f"custom op {op_name!r} registered by another test")
    if op_name not in REFERENCES:
        pytest.fail(f"no reference for op {op_name}: add its cases to REFERENCES in {__name__}")
    for case in REFERENCES[op_name]:
        got, want = run_case(op_name, case)
        where = f"op {op_name}, case {case.id}"
        assert got.shape == want.shape, f"{where}: shape {got.shape}, numpy gives {want.shape}"
        assert np.all(np.isfinite(got)) or not np.all(np.isfinite(want)), f"{where}: {got} is not finite"
        if case.exact:
            assert np.array_equal(got, want), f"{where}: {got} != {want}"
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=where)


def test_every_reference_names_a_real_op():
    """A reference for an op that left the table is stale."""
    assert sorted(set(REFERENCES) - set(OPS)) == []


def test_output_shape_matches_the_declared_shape():
    """The shape rule (symbolic N) agrees with what numpy computes for each reduction."""
    g = gc.Graph("shapes")
    x = g.input("x", shape=("N", 3, 4))
    outs = {
        "sum": gc.sum(x, axis=1), "mean_keep": gc.mean(x, axis=(0, 2), keepdims=True),
        "lse": gc.logsumexp(x, axis=-1), "mm": x @ g.const(np.ones((4, 2))), "t": gc.transpose(x),
    }
    for name, node in outs.items():
        g.output(name, node)
    prog = gc.compile(g)
    values = prog.forward({"x": np.ones((5, 3, 4))})
    n = sympy.Symbol("N", integer=True, positive=True)
    for name in outs:
        declared = prog.graph.nodes[name]["shape"]
        concrete = tuple(int(d.subs(n, 5)) if isinstance(d, sympy.Expr) else d for d in declared)
        assert concrete == values[name].shape, name


def test_symbolic_batch_broadcasts_like_numpy():
    g = gc.Graph("bcast")
    x = g.input("x", shape=("N", 1, 3))
    b = g.input("b", shape=(2, 1))
    out = x + b
    assert out.shape == (sympy.Symbol("N", integer=True, positive=True), 2, 3)
    g.output("out", out)
    rng = np.random.default_rng(1)
    xv, bv = rng.standard_normal((4, 1, 3)), rng.standard_normal((2, 1))
    np.testing.assert_allclose(gc.compile(g).forward({"x": xv, "b": bv})["out"], xv + bv, rtol=1e-15)


def test_sigmoid_tails_are_exact():
    """sigmoid(1000) is exactly 1; sigmoid(-1000) is within 1.3e-308 of its true value (its
    exponent is capped at 709 so that exp cannot overflow), with no warning and no NaN."""
    g = gc.Graph("tails")
    x = g.input("x", shape=(3,))
    g.output("out", gc.sigmoid(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = gc.compile(g).forward({"x": np.array([-1000.0, -700.0, 1000.0])})["out"]
    assert got[2] == 1.0 and 0.0 <= got[0] <= 1.3e-308
    assert got[1] == pytest.approx(np.exp(-700.0), rel=1e-12)


# -- the table is the one record of an op -------------------------------------------------
def test_every_op_that_names_a_user_function_is_one_in_the_package():
    import inspect

    named = [op for op in OPS.values() if op.function and op.builtin]
    assert len(named) >= 36
    for op in named:
        function = getattr(gc, op.function)
        assert op.function in gc.__all__
        params = list(inspect.signature(function).parameters)
        assert params[len(params) - len(op.attrs):] == list(op.attrs), op.name
        operands = 1 if op.arity < 0 else op.arity  # variadic ops (concat, stack) take one list
        assert len(params) == operands + len(op.attrs), op.name


def test_a_user_function_takes_its_attrs_by_keyword_and_position_like_numpy():
    g = gc.Graph("t")
    x = g.input("x", shape=(2, 3))
    assert gc.sum(x, 1, True).shape == (2, 1)
    assert gc.sum(x, axis=[0, 1]).shape == ()
    assert gc.reshape(x, shape=[3, 2]).shape == (3, 2)
    assert gc.leaky_relu(x, alpha=1).op == "leaky_relu"
    with pytest.raises(TypeError):
        gc.reshape(x)  # the target shape has no default


def test_built_in_ops_are_final():
    from graphc.ops.base import register

    for name in ("relu", "matmul", "softmax"):
        with pytest.raises(gc.GraphError, match="final once graphc is imported"):
            register(OPS[name])
        with pytest.raises(TypeError):
            OPS[name] = OPS["exp"]  # the table is a read-only view
        assert OPS[name].name == name


# -- every op travels through a graph file and is drawn -----------------------------------------
FILE_FREE = {"fused"}  # a raw networkx graph: test_io covers fused kernels' expressions


@pytest.mark.parametrize("op_name", sorted(REFERENCES))
def test_every_op_survives_a_json_round_trip_and_is_drawn(op_name, tmp_path):
    """gc.save then gc.load gives the same program (same source, same values); the drawing
    of the graph names the op."""
    from graphc.render import to_digraph

    if op_name in FILE_FREE:
        pytest.skip("raw networkx graph")
    for case in REFERENCES[op_name]:
        rng = np.random.default_rng(0)
        arrays = case.draw(rng)
        graph = build_graph(op_name, case, arrays)
        loaded = gc.load(gc.save(graph, tmp_path / f"{op_name}-{case.id}.json"))
        before, after = gc.compile(graph), gc.compile(loaded)
        assert before.source == after.source, f"op {op_name}, case {case.id}"
        names = before.graph.graph["inputs"] + before.graph.graph["params"]
        feeds = {"x": 0.0} if op_name == "const" else dict(zip(names, arrays))
        with np.errstate(divide="ignore", over="ignore"):
            np.testing.assert_array_equal(before.forward(feeds)["out"], after.forward(feeds)["out"])
        drawn = to_digraph(graph).source
        assert op_name in drawn or op_name in ("input", "param", "const"), f"the drawing does not show {op_name}"
