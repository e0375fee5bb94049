"""Convolution and pooling written the slow, obvious way: one output element at a time.

The references of the conv and pooling tests (independent of graphc's strided views and
matmuls, and of the tap-by-tap definitions in the op table).
"""

from __future__ import annotations

import numpy as np


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv2d(x, w, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for b in range(n):
        for k in range(o):
            for y in range(ho):
                for z in range(wo):
                    total = 0.0
                    for ch in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                total += xp[b, ch, y * sh + i * dh, z * sw + j * dw] * w[k, ch, i, j]
                    out[b, k, y, z] = total
    return out


def conv2d_grad_input(g, w, shape, stride=1, padding=0, dilation=1):
    """The transpose of conv2d in x: every output's cotangent added to the inputs it read."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, o, ho, wo = g.shape
    _, c, kh, kw = w.shape
    h, wd = shape
    dxp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    for b in range(n):
        for k in range(o):
            for y in range(ho):
                for z in range(wo):
                    for ch in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                dxp[b, ch, y * sh + i * dh, z * sw + j * dw] += g[b, k, y, z] * w[k, ch, i, j]
    return dxp[:, :, ph:ph + h, pw:pw + wd]


def conv2d_grad_kernel(x, g, shape, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    o, c, kh, kw = shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dw_ = np.zeros(shape)
    n, _, ho, wo = g.shape
    for k in range(o):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    dw_[k, ch, i, j] = sum(g[b, k, y, z] * xp[b, ch, y * sh + i * dh, z * sw + j * dw]
                                           for b in range(n) for y in range(ho) for z in range(wo))
    return dw_


def pool(x, kernel=2, stride=None, combine=max):
    (kh, kw) = pair(kernel)
    (sh, sw) = pair(stride if stride is not None else kernel)
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, ho, wo))
    for b in range(n):
        for ch in range(c):
            for y in range(ho):
                for z in range(wo):
                    window = [x[b, ch, y * sh + i, z * sw + j] for i in range(kh) for j in range(kw)]
                    out[b, ch, y, z] = combine(window)
    return out


def mean(values):
    return sum(values) / len(values)


def max_pool2d_grad(x, g, kernel=2, stride=None):
    """Each window's cotangent to its first maximal element, in row-major order (PyTorch's rule)."""
    (kh, kw) = pair(kernel)
    (sh, sw) = pair(stride if stride is not None else kernel)
    out = np.zeros_like(x)
    n, c, ho, wo = g.shape
    for b in range(n):
        for ch in range(c):
            for y in range(ho):
                for z in range(wo):
                    cells = [(y * sh + i, z * sw + j) for i in range(kh) for j in range(kw)]
                    best = cells[0]
                    for cell in cells[1:]:
                        if x[b, ch, cell[0], cell[1]] > x[b, ch, best[0], best[1]]:
                            best = cell
                    out[b, ch, best[0], best[1]] += g[b, ch, y, z]
    return out


def avg_pool2d_grad(g, shape, kernel=2, stride=None):
    (kh, kw) = pair(kernel)
    (sh, sw) = pair(stride if stride is not None else kernel)
    n, c, ho, wo = g.shape
    out = np.zeros((n, c) + tuple(shape))
    for b in range(n):
        for ch in range(c):
            for y in range(ho):
                for z in range(wo):
                    for i in range(kh):
                        for j in range(kw):
                            out[b, ch, y * sh + i, z * sw + j] += g[b, ch, y, z] / (kh * kw)
    return out


# conv2d's parts: its patches (im2col, (C*kh*kw, N, Ho*Wo)) and their product with the kernel
def _sizes(hw, kernel, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair(kernel), pair(stride), pair(padding), pair(dilation)
    return ((hw[0] + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (hw[1] + 2 * pw - dw * (kw - 1) - 1) // sw + 1)


def patches(x, kernel, stride=1, padding=0, dilation=1):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair(kernel), pair(stride), pair(padding), pair(dilation)
    n, c = x.shape[:2]
    ho, wo = _sizes(x.shape[2:], kernel, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((c * kh * kw, n, ho * wo))
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                for b in range(n):
                    for y in range(ho):
                        for z in range(wo):
                            out[(ch * kh + i) * kw + j, b, y * wo + z] = xp[b, ch, y * sh + i * dh, z * sw + j * dw]
    return out


def patches_grad(d, shape, kernel, stride=1, padding=0, dilation=1):
    """The transpose of patches: each entry's cotangent added to the input element it copied."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair(kernel), pair(stride), pair(padding), pair(dilation)
    c, n = d.shape[0] // (kh * kw), d.shape[1]
    ho, wo = _sizes(shape, kernel, stride, padding, dilation)
    dxp = np.zeros((n, c, shape[0] + 2 * ph, shape[1] + 2 * pw))
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                for b in range(n):
                    for y in range(ho):
                        for z in range(wo):
                            dxp[b, ch, y * sh + i * dh, z * sw + j * dw] += d[(ch * kh + i) * kw + j, b, y * wo + z]
    return dxp[:, :, ph:ph + shape[0], pw:pw + shape[1]]


def conv_matmul(p, w, size):
    k, n, _ = p.shape
    flat = w.reshape(w.shape[0], k)
    out = np.zeros((n, w.shape[0]) + tuple(size))
    for b in range(n):
        for o in range(w.shape[0]):
            for y in range(size[0]):
                for z in range(size[1]):
                    out[b, o, y, z] = sum(flat[o, r] * p[r, b, y * size[1] + z] for r in range(k))
    return out


def conv_matmul_grad_patches(g, w):
    n, o, ho, wo = g.shape
    flat = w.reshape(o, -1)
    return np.array([[[sum(flat[q, r] * g[b, q, y // wo, y % wo] for q in range(o)) for y in range(ho * wo)]
                      for b in range(n)] for r in range(flat.shape[1])])


def conv_matmul_grad_kernel(p, g, shape):
    n, o, ho, wo = g.shape
    flat = np.array([[sum(g[b, q, y // wo, y % wo] * p[r, b, y] for b in range(n) for y in range(ho * wo))
                      for r in range(p.shape[0])] for q in range(o)])
    return flat.reshape(shape)
