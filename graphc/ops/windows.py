"""Convolution and pooling in numpy, as an expert writes them: strided views and one matmul.

These are helpers (``ops/helpers.py``): the generated module carries the ones its code
calls. Layout NCHW; ``kernel``, ``stride``, ``padding``, ``dilation`` are pairs of ints.

- :func:`_windows` is a read-only ``as_strided`` view (n, c, kh, kw, ho, wo) of every
  window of x: no copy. A convolution copies it once into patches (im2col, one row per
  (c, i, j), one column per (n, y, x)) and multiplies them by the kernel in one matmul.
- The gradients go back tap by tap: for each of the kh * kw kernel offsets, one strided
  slice of the input's cotangent gets the cotangents of the elements that offset read
  (a scatter-add of kh * kw array additions, no Python loop over pixels).
- Max pooling routes each window's gradient to its first maximal element in row-major
  order, as PyTorch does (``MAX_POOL_TIES``); average pooling spreads it evenly.
"""

from __future__ import annotations

import numpy

from .helpers import helper

__all__ = ["MAX_POOL_TIES"]

MAX_POOL_TIES = "ties: each window's gradient goes to its first maximal element (row-major), as in PyTorch"


@helper
def _windows(x, kernel, stride, dilation):
    """A read-only view (n, c, kh, kw, ho, wo) of the windows of x (n, c, h, w): no copy."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    sn, sc, sy, sx = x.strides
    return numpy.lib.stride_tricks.as_strided(
        x, (n, c, kh, kw, ho, wo), (sn, sc, dh * sy, dw * sx, sh * sy, sw * sx), writeable=False)


@helper
def _padded(x, padding):
    """x with ``padding`` zeros on both sides of its last two axes."""
    ph, pw = padding
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    out = numpy.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)  # numpy.pad costs ~10x more on small arrays
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


@helper
def _patches(x, kernel, stride, padding, dilation):
    """im2col: the (c kh kw, n ho wo) matrix of x's windows, and (ho, wo)."""
    cols = _windows(_padded(x, padding), kernel, stride, dilation)
    n, c, kh, kw, ho, wo = cols.shape
    return cols.transpose(1, 2, 3, 0, 4, 5).reshape(c * kh * kw, n * ho * wo), (ho, wo)


@helper
def _conv2d(x, w, stride, padding, dilation):
    """The convolution (cross-correlation) of x (n, c, h, w) with w (o, c, kh, kw): (n, o, ho, wo)."""
    o, c, kh, kw = w.shape
    patches, (ho, wo) = _patches(x, (kh, kw), stride, padding, dilation)
    out = w.reshape(o, c * kh * kw) @ patches  # (o, n ho wo): one matmul
    return out.reshape(o, x.shape[0], ho, wo).transpose(1, 0, 2, 3)


@helper
def _conv2d_grad_kernel(x, g, shape, stride, padding, dilation):
    """d/dw of conv2d(x, w) for the cotangent g (n, o, ho, wo) of its output; shape is w's."""
    o, c, kh, kw = shape
    patches, _ = _patches(x, (kh, kw), stride, padding, dilation)
    return (g.transpose(1, 0, 2, 3).reshape(o, -1) @ patches.T).reshape(shape)


@helper
def _tap(i, j, size, stride, dilation):
    """The strided slices of the (padded) input that kernel offset (i, j) reads, over outputs (ho, wo)."""
    (ho, wo), (sh, sw), (dh, dw) = size, stride, dilation
    return slice(i * dh, i * dh + sh * (ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)


@helper
def _conv2d_grad_input(g, w, shape, stride, padding, dilation):
    """d/dx of conv2d(x, w) for the cotangent g (n, o, ho, wo) of its output; shape is x's (h, w)."""
    n, o, ho, wo = g.shape
    _, c, kh, kw = w.shape
    (h, wd), (ph, pw) = shape, padding
    # the cotangent of every patch entry: one matmul, then back where each tap read from
    d_patches = (w.reshape(o, c * kh * kw).T @ g.transpose(1, 0, 2, 3).reshape(o, n * ho * wo))
    d_patches = d_patches.reshape(c, kh, kw, n, ho, wo)
    out = numpy.zeros((c, n, h + 2 * ph, wd + 2 * pw), dtype=g.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _tap(i, j, (ho, wo), stride, dilation)
            out[:, :, rows, cols] += d_patches[:, i, j]
    return out.transpose(1, 0, 2, 3)[:, :, ph:ph + h, pw:pw + wd]


@helper
def _max_pool2d(x, kernel, stride):
    """The largest element of each window of x (n, c, h, w): (n, c, ho, wo)."""
    cols = _windows(x, kernel, stride, (1, 1))
    out = cols[:, :, 0, 0].copy()
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            numpy.maximum(out, cols[:, :, i, j], out=out)
    return out


@helper
def _max_pool2d_grad(x, y, g, kernel, stride):
    """d/dx of y = max_pool2d(x) for the cotangent g of y: each window's first maximum takes it."""
    cols = _windows(x, kernel, stride, (1, 1))
    apart = stride[0] >= kernel[0] and stride[1] >= kernel[1]  # no element in two windows: write, not add
    out = numpy.zeros_like(x)
    open_ = None  # windows whose maximum is not found yet
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            hit = cols[:, :, i, j] == y
            if open_ is None:
                open_ = ~hit
            else:
                hit &= open_
                open_ &= ~hit
            rows, columns = _tap(i, j, y.shape[2:], stride, (1, 1))
            if apart:
                numpy.multiply(g, hit, out=out[:, :, rows, columns])
            else:
                out[:, :, rows, columns] += g * hit
    return out


@helper
def _avg_pool2d(x, kernel, stride):
    """The mean of each window of x (n, c, h, w): (n, c, ho, wo)."""
    cols = _windows(x, kernel, stride, (1, 1))
    out = cols[:, :, 0, 0].copy()
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            if i or j:
                out += cols[:, :, i, j]
    out *= 1.0 / (kernel[0] * kernel[1])
    return out


@helper
def _avg_pool2d_grad(g, shape, kernel, stride):
    """d/dx of avg_pool2d(x) for the cotangent g of its output; shape is x's (h, w)."""
    n, c, ho, wo = g.shape
    share = g * (1.0 / (kernel[0] * kernel[1]))
    out = numpy.zeros((n, c) + tuple(shape), dtype=g.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = _tap(i, j, (ho, wo), stride, (1, 1))
            out[:, :, rows, cols] += share
    return out
