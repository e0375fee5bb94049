"""Convolution and pooling in numpy, as an expert writes them: strided views and one matmul.

These are helpers (``ops/helpers.py``): the generated module carries the ones its code
calls. Layout NCHW; ``kernel``, ``stride``, ``padding``, ``dilation`` are pairs of ints.

- Pooling reads x tap by tap, one strided slice per kernel offset (no view of windows).
- :func:`_windows` is a read-only ``as_strided`` view (n, c, kh, kw, ho, wo) of every
  window of x: no copy. A convolution copies it once into patches (im2col: (c kh kw, n,
  ho wo), a value of the graph, so the backward pass reuses them for the kernel's
  gradient) and multiplies them by the kernel in one matmul.
- The input's gradient goes back tap by tap: for each of the kh * kw kernel offsets, one
  strided slice of the input's cotangent gets the cotangents of the elements that offset
  read (a scatter-add of kh * kw array additions, no Python loop over pixels).
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
def _conv2d_patches(x, kernel, stride, padding, dilation):
    """im2col: the patches (c kh kw, n, ho wo) of x's windows, copied once from their view."""
    cols = _windows(_padded(x, padding), kernel, stride, dilation)
    n, c, kh, kw, ho, wo = cols.shape
    return cols.transpose(1, 2, 3, 0, 4, 5).reshape(c * kh * kw, n, ho * wo)


@helper
def _conv2d_matmul(p, w, size):
    """The convolution from its patches p (c kh kw, n, ho wo) and kernel w: (n, o, ho, wo), one matmul."""
    k, n, _ = p.shape
    o = w.shape[0]
    return (w.reshape(o, k) @ p.reshape(k, -1)).reshape((o, n) + tuple(size)).transpose(1, 0, 2, 3)


@helper
def _conv2d_matmul_grad_kernel(p, g, shape):
    """d/dw of _conv2d_matmul(p, w) for the cotangent g (n, o, ho, wo) of its output; shape is w's."""
    k = p.shape[0]
    return (g.transpose(1, 0, 2, 3).reshape(shape[0], -1) @ p.reshape(k, -1).T).reshape(shape)


@helper
def _conv2d_matmul_grad_patches(g, w):
    """d/dp of _conv2d_matmul(p, w) for the cotangent g (n, o, ho, wo) of its output."""
    n, o, ho, wo = g.shape
    return (w.reshape(o, -1).T @ g.transpose(1, 0, 2, 3).reshape(o, -1)).reshape(-1, n, ho * wo)


@helper
def _tap(i, j, size, stride, dilation):
    """The strided slices of the (padded) input that kernel offset (i, j) reads, over outputs (ho, wo)."""
    (ho, wo), (sh, sw), (dh, dw) = size, stride, dilation
    return slice(i * dh, i * dh + sh * (ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)


@helper
def _conv2d_patches_grad(d, shape, kernel, stride, padding, dilation):
    """col2im: d/dx of _conv2d_patches(x) for the cotangent d of the patches; shape is x's (h, w)."""
    k, n, _ = d.shape
    (kh, kw), (h, wd), (ph, pw) = kernel, shape, padding
    ho = (h + 2 * ph - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pw - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    d = d.reshape(k // (kh * kw), kh, kw, n, ho, wo)
    out = numpy.zeros((d.shape[0], n, h + 2 * ph, wd + 2 * pw), dtype=d.dtype)
    for i in range(kh):
        for j in range(kw):  # each tap's cotangents go back where it read: kh * kw slice additions
            rows, cols = _tap(i, j, (ho, wo), stride, dilation)
            out[:, :, rows, cols] += d[:, i, j]
    return out.transpose(1, 0, 2, 3)[:, :, ph:ph + h, pw:pw + wd]


@helper
def _pool_size(x, kernel, stride):
    """(ho, wo): how many windows of ``kernel`` fit in x's height and width at ``stride``."""
    return (x.shape[2] - kernel[0]) // stride[0] + 1, (x.shape[3] - kernel[1]) // stride[1] + 1


@helper
def _max_pool2d(x, kernel, stride):
    """The largest element of each window of x (n, c, h, w): (n, c, ho, wo), one maximum per tap."""
    size = _pool_size(x, kernel, stride)
    out = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = _tap(i, j, size, stride, (1, 1))
            if out is None:
                out = x[:, :, rows, cols].copy()
            else:
                numpy.maximum(out, x[:, :, rows, cols], out=out)
    return out


@helper
def _max_pool2d_grad(x, y, g, kernel, stride):
    """d/dx of y = max_pool2d(x) for the cotangent g of y: each window's first maximum takes it."""
    apart = stride[0] >= kernel[0] and stride[1] >= kernel[1]  # no element in two windows: write, not add
    out = numpy.zeros_like(x)
    open_ = None  # windows whose maximum is not found yet
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = _tap(i, j, y.shape[2:], stride, (1, 1))
            hit = x[:, :, rows, cols] == y
            if open_ is None:
                open_ = ~hit
            else:
                hit &= open_
                open_ &= ~hit
            if apart:
                numpy.multiply(g, hit, out=out[:, :, rows, cols])
            else:
                out[:, :, rows, cols] += g * hit
    return out


@helper
def _avg_pool2d(x, kernel, stride):
    """The mean of each window of x (n, c, h, w): (n, c, ho, wo)."""
    size = _pool_size(x, kernel, stride)
    out = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = _tap(i, j, size, stride, (1, 1))
            if out is None:
                out = x[:, :, rows, cols].copy()
            else:
                out += x[:, :, rows, cols]
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
