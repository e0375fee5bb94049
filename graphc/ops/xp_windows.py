"""Convolution and pooling over the array API standard: the twins of ``ops/windows.py``.

A module printed for the array API standard (``lower/array_api.py``) calls the same helper
names as numpy's module, and carries these sources instead (``XP_HELPERS``). They use only
functions the standard names, called through ``xp``: strided slices, ``xp.stack``,
``xp.concat``, ``xp.reshape``, ``xp.permute_dims``, ``xp.maximum``, ``xp.where``, ``@``.
No array is ever written (JAX's cannot be), so:

- padding is a concat with zeros (:func:`_xp_padded`);
- a scatter-add (col2im, the pooling gradients) is a sum of full-size arrays, one per
  kernel offset, each the offset's cotangents spread to the positions it read and framed
  in zeros (:func:`_xp_placed`): a stride ``s`` interleaves ``s - 1`` zeros by a stack and
  a reshape.

Same layout (NCHW), arguments and results as numpy's helpers, and max pooling's ties as
``MAX_POOL_TIES`` says (the first maximal element in row-major order takes the gradient).
Here ``xp`` is numpy (an array-API namespace itself), so the helpers run in this module too:

>>> x = xp.reshape(xp.arange(16.0), (1, 1, 4, 4))
>>> _max_pool2d(x, (2, 2), (2, 2))[0, 0].tolist()
[[5.0, 7.0], [13.0, 15.0]]
>>> _xp_placed(xp.ones((1, 1, 2, 2)), 1, 0, (2, 1), (4, 3))[0, 0].tolist()
[[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
"""

from __future__ import annotations

import numpy as xp  # the generated module binds xp to its library's namespace

from .helpers import xp_helper

__all__: list[str] = []


@xp_helper
def _xp_tap(i, j, size, stride, dilation):
    """The strided slices of the (padded) input that kernel offset (i, j) reads, over outputs (ho, wo)."""
    (ho, wo), (sh, sw), (dh, dw) = size, stride, dilation
    return slice(i * dh, i * dh + sh * (ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)


@xp_helper
def _xp_framed(t, axis, before, after):
    """t with ``before`` and ``after`` zeros on either side of ``axis``, by a concat."""
    parts = []
    for count in (before, after):
        shape = list(t.shape)
        shape[axis] = count
        parts.append(xp.zeros(tuple(shape), dtype=t.dtype) if count else None)
    return xp.concat([p for p in (parts[0], t, parts[1]) if p is not None], axis=axis)


@xp_helper
def _xp_spread(t, axis, start, step, length):
    """t along ``axis`` moved to positions start, start + step, ... of an axis ``length`` long, zeros between."""
    m = t.shape[axis]
    if step > 1 and m > 1:  # interleave step - 1 zeros after each entry, then drop the last ones
        stacked = xp.stack([t] + [xp.zeros_like(t)] * (step - 1), axis=axis + 1)
        shape = list(t.shape)
        shape[axis] = m * step
        t = xp.reshape(stacked, tuple(shape))
        t = t[(slice(None),) * axis + (slice(0, step * (m - 1) + 1), ...)]
    return _xp_framed(t, axis, start, length - start - t.shape[axis])


@xp_helper
def _xp_placed(t, i, j, stride, shape, dilation=(1, 1)):
    """The cotangents t (n, c, ho, wo) of kernel offset (i, j) where that offset read them,
    in a zero array (n, c) + shape: the scatter of one tap, without writing."""
    t = _xp_spread(t, 2, i * dilation[0], stride[0], shape[0])
    return _xp_spread(t, 3, j * dilation[1], stride[1], shape[1])


@xp_helper
def _xp_padded(x, padding):
    """x with ``padding`` zeros on both sides of its last two axes."""
    ph, pw = padding
    if ph:
        x = _xp_framed(x, 2, ph, ph)
    if pw:
        x = _xp_framed(x, 3, pw, pw)
    return x


@xp_helper
def _conv2d_patches(x, kernel, stride, padding, dilation):
    """im2col: the patches (c kh kw, n, ho wo) of x's windows, one strided slice per tap."""
    x = _xp_padded(x, padding)
    n, c, h, w = x.shape
    (kh, kw), (dh, dw) = kernel, dilation
    size = ((h - dh * (kh - 1) - 1) // stride[0] + 1, (w - dw * (kw - 1) - 1) // stride[1] + 1)
    taps = []
    for i in range(kh):
        for j in range(kw):
            rows, cols = _xp_tap(i, j, size, stride, dilation)
            taps.append(x[:, :, rows, cols])
    cols = xp.permute_dims(xp.stack(taps, axis=2), (1, 2, 0, 3, 4))  # (c, kh kw, n, ho, wo)
    return xp.reshape(cols, (c * kh * kw, n, size[0] * size[1]))


@xp_helper
def _conv2d_matmul(p, w, size):
    """The convolution from its patches p (c kh kw, n, ho wo) and kernel w: (n, o, ho, wo), one matmul."""
    k, n, _ = p.shape
    o = w.shape[0]
    out = xp.reshape(w, (o, k)) @ xp.reshape(p, (k, -1))
    return xp.permute_dims(xp.reshape(out, (o, n) + tuple(size)), (1, 0, 2, 3))


@xp_helper
def _conv2d_matmul_grad_kernel(p, g, shape):
    """d/dw of _conv2d_matmul(p, w) for the cotangent g (n, o, ho, wo) of its output; shape is w's."""
    k = p.shape[0]
    g = xp.reshape(xp.permute_dims(g, (1, 0, 2, 3)), (shape[0], -1))
    return xp.reshape(g @ xp.reshape(p, (k, -1)).T, tuple(shape))


@xp_helper
def _conv2d_matmul_grad_patches(g, w):
    """d/dp of _conv2d_matmul(p, w) for the cotangent g (n, o, ho, wo) of its output."""
    n, o, ho, wo = g.shape
    out = xp.reshape(w, (o, -1)).T @ xp.reshape(xp.permute_dims(g, (1, 0, 2, 3)), (o, -1))
    return xp.reshape(out, (-1, n, ho * wo))


@xp_helper
def _conv2d_patches_grad(d, shape, kernel, stride, padding, dilation):
    """col2im: d/dx of _conv2d_patches(x) for the cotangent d of the patches; shape is x's (h, w)."""
    k, n, _ = d.shape
    (kh, kw), (h, wd), (ph, pw) = kernel, shape, padding
    ho = (h + 2 * ph - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pw - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    d = xp.permute_dims(xp.reshape(d, (k // (kh * kw), kh * kw, n, ho, wo)), (2, 0, 1, 3, 4))  # (n, c, taps, ..)
    out = None
    for i in range(kh):
        for j in range(kw):  # each tap's cotangents go back where it read: kh * kw placed arrays summed
            placed = _xp_placed(d[:, :, i * kw + j, ...], i, j, stride, (h + 2 * ph, wd + 2 * pw), dilation)
            out = placed if out is None else out + placed
    return out[:, :, ph:ph + h, pw:pw + wd]


@xp_helper
def _xp_pool_size(x, kernel, stride):
    """(ho, wo): how many windows of ``kernel`` fit in x's height and width at ``stride``."""
    return (x.shape[2] - kernel[0]) // stride[0] + 1, (x.shape[3] - kernel[1]) // stride[1] + 1


@xp_helper
def _max_pool2d(x, kernel, stride):
    """The largest element of each window of x (n, c, h, w): (n, c, ho, wo), one maximum per tap."""
    size = _xp_pool_size(x, kernel, stride)
    out = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = _xp_tap(i, j, size, stride, (1, 1))
            out = x[:, :, rows, cols] if out is None else xp.maximum(out, x[:, :, rows, cols])
    return out


@xp_helper
def _max_pool2d_grad(x, y, g, kernel, stride):
    """d/dx of y = max_pool2d(x) for the cotangent g of y: each window's first maximum (row-major) takes it."""
    out = None
    open_ = None  # windows whose maximum is not found yet
    zero = xp.zeros_like(g)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = _xp_tap(i, j, tuple(y.shape[2:]), stride, (1, 1))
            hit = x[:, :, rows, cols] == y
            if open_ is None:
                open_ = ~hit
            else:
                hit = hit & open_
                open_ = open_ & ~hit
            placed = _xp_placed(xp.where(hit, g, zero), i, j, stride, tuple(x.shape[2:]))
            out = placed if out is None else out + placed
    return out


@xp_helper
def _avg_pool2d(x, kernel, stride):
    """The mean of each window of x (n, c, h, w): (n, c, ho, wo)."""
    size = _xp_pool_size(x, kernel, stride)
    out = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = _xp_tap(i, j, size, stride, (1, 1))
            out = x[:, :, rows, cols] if out is None else out + x[:, :, rows, cols]
    return out * (1.0 / (kernel[0] * kernel[1]))


@xp_helper
def _avg_pool2d_grad(g, shape, kernel, stride):
    """d/dx of avg_pool2d(x) for the cotangent g of its output; shape is x's (h, w)."""
    share = g * (1.0 / (kernel[0] * kernel[1]))
    out = None
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            placed = _xp_placed(share, i, j, stride, tuple(shape))
            out = placed if out is None else out + placed
    return out
