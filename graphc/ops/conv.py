"""conv2d, max_pool2d, avg_pool2d (NCHW) and their gradients, one entry each.

conv2d is a composite: its patches (``conv2d_patches``, im2col, a value the backward pass
reuses) times the kernel (``conv2d_matmul``, one matmul). Each other op prints as a call
of its numpy helper (``ops/windows.py``), keeps a reference definition written tap by tap
(a different algorithm, for the reference interpreter) and a VJP rule. The gradients are
ops too, and closed under differentiation where linear in the cotangent: conv2d_matmul
is bilinear in (patches, kernel), so the VJPs of its two gradient ops are conv2d_matmul
and the other gradient op; im2col and col2im, and avg_pool2d and its gradient, are each
other's transposes. The gradient of ``max_pool2d_grad`` (a second derivative through max
pooling) is not provided.

Conventions: conv2d is PyTorch's (a cross-correlation, no kernel flip), output size
``(h + 2 p - d (k - 1) - 1) // s + 1`` per axis, NCHW unless ``layout="NHWC"`` (the kernel
is (C_out, C, kh, kw) in both); pooling has no padding and ``stride``
defaults to ``kernel``; max pooling's ties: :data:`~graphc.ops.windows.MAX_POOL_TIES`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import ir, shapes
from ..errors import ShapeError, describe
from .base import Op, register
from .windows import MAX_POOL_TIES

__all__ = ["pair", "conv_output_size"]


def pair(value, name: str, node=None, op=None, least: int = 1) -> tuple[int, int]:
    """An int or a pair of ints (each >= ``least``) as a pair; anything else a ShapeError."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= least
                                  for v in items):
        raise ShapeError(f"{describe(node, op)}: {name} must be an int >= {least} or a pair of them, "
                         f"found {value!r}")
    return int(items[0]), int(items[1])


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _spatial(shape, what: str, node, op) -> tuple[int, int]:
    if len(shape) != 4:
        raise ShapeError(f"{describe(node, op)}: {what} must be 4-d (NCHW), found {shapes.fmt(shape)}")
    h, w = shape[2], shape[3]
    if not all(isinstance(d, numbers.Integral) for d in (h, w)):
        raise ShapeError(f"{describe(node, op)}: the height and width of {what} must be numbers, found "
                         f"{shapes.fmt(shape)} (only the batch axis may be symbolic)")
    return int(h), int(w)


def _conv_attrs(attrs, node, op):
    return (pair(attrs.get("stride"), "stride", node, op), pair(attrs.get("padding"), "padding", node, op, 0),
            pair(attrs.get("dilation"), "dilation", node, op))


def _out_hw(hw, kernel, stride, padding, dilation, node, op):
    out = tuple(conv_output_size(*args) for args in zip(hw, kernel, stride, padding, dilation))
    if min(out) < 1:
        raise ShapeError(f"{describe(node, op)}: a {kernel[0]}x{kernel[1]} window (dilation {dilation}) does not "
                         f"fit in {hw[0]}x{hw[1]} with padding {padding}: pad more or use a smaller kernel")
    return out


def _kernel_shape(w, c, node, op):
    if len(w) != 4 or not all(isinstance(d, numbers.Integral) for d in w):
        raise ShapeError(f"{describe(node, op)}: the kernel must be (C_out, C, kh, kw) of numbers, found "
                         f"{shapes.fmt(w)}")
    if w[1] != c:
        raise ShapeError(f"{describe(node, op)}: the kernel {shapes.fmt(w)} reads {w[1]} channels, but x has {c} "
                         "(x is (N, C, H, W), the kernel (C_out, C, kh, kw))")
    return tuple(int(d) for d in w)


# -- conv2d: a composite of its patches and one matmul ---------------------------------------
# NHWC: the channels last (TensorFlow's layout); computed as NCHW between two transposes
TO_NCHW, FROM_NCHW = (0, 3, 1, 2), (0, 2, 3, 1)


def _channels_last(attrs, node=None, op=None) -> bool:
    layout = attrs.get("layout")
    if layout not in ("NCHW", "NHWC"):
        raise ShapeError(f"{describe(node, op)}: layout must be 'NCHW' (channels first) or 'NHWC', found {layout!r}")
    return layout == "NHWC"


def _conv2d_shape(arg_shapes, attrs, node=None, op=None):
    x, w = arg_shapes
    last = _channels_last(attrs, node, op)
    if last and len(x) == 4:
        x = tuple(x[a] for a in TO_NCHW)
    hw = _spatial(x, "x", node, op)
    o, _, kh, kw = _kernel_shape(w, x[1], node, op)
    out = (x[0], o) + _out_hw(hw, (kh, kw), *_conv_attrs(attrs, node, op), node, op)
    return tuple(out[a] for a in FROM_NCHW) if last else out


def _attrs(ref) -> dict:
    return ref.editor.graph.nodes[ref.id][ir.ATTRS]


def _window_attrs(attrs) -> dict:
    return {k: attrs[k] for k in ("kernel", "stride", "padding", "dilation")}


def _expand_conv2d(args, attrs):
    # the patches are a value of the graph: the backward pass reuses them for the kernel's gradient
    x, w = args
    last = _channels_last(attrs)
    if last:
        x = x.editor.transpose(x, TO_NCHW)
    kernel = tuple(int(d) for d in w.shape[2:])
    patches = x.editor.add("conv2d_patches", [x], {**{k: attrs[k] for k in _CONV_ATTRS}, "kernel": kernel})
    size = _out_hw(tuple(x.shape[2:]), kernel, *_conv_attrs(attrs, None, None), None, None)
    out = x.editor.add("conv2d_matmul", [patches, w], {"size": size})
    return out.editor.transpose(out, FROM_NCHW) if last else out


def _taps(x, kh, kw, out_hw, stride, padding, dilation):
    """(i, j, the (n, c, ho, wo) slice of the padded x that tap (i, j) reads), for the references."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (out_hw[0] - 1) + 1, stride[0])
            cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (out_hw[1] - 1) + 1, stride[1])
            yield i, j, rows, cols, xp


def _reference_conv2d(values, attrs):
    x, w = values
    if _channels_last(attrs):
        return _reference_conv2d([np.transpose(x, TO_NCHW), w], {**attrs, "layout": "NCHW"}).transpose(FROM_NCHW)
    stride, padding, dilation = _conv_attrs(attrs, None, None)
    out_hw = _out_hw(x.shape[2:], w.shape[2:], stride, padding, dilation, None, None)
    out = np.zeros((x.shape[0], w.shape[0]) + out_hw, dtype=np.result_type(x, w))
    for i, j, rows, cols, xp in _taps(x, w.shape[2], w.shape[3], out_hw, stride, padding, dilation):
        out += np.einsum("ncyx,oc->noyx", xp[:, :, rows, cols], w[:, :, i, j])
    return out


_CONV_ATTRS = {"stride": 1, "padding": 0, "dilation": 1}

register(Op(
    "conv2d", 2, _conv2d_shape, attrs={**_CONV_ATTRS, "layout": "NCHW"}, expand=_expand_conv2d, function="conv2d",
    operand_names=("x", "w"), reference=_reference_conv2d,
    doc="2-d convolution (cross-correlation) of x (N, C, H, W) with w (C_out, C, kh, kw): (N, C_out, Ho, Wo); "
        "layout='NHWC' for x (N, H, W, C) and a result (N, Ho, Wo, C_out)",
))


# -- the patches (im2col) and their transpose (col2im) -----------------------------------------
def _patch_attrs(attrs, node, op):
    return (pair(attrs.get("kernel"), "kernel", node, op),) + _conv_attrs(attrs, node, op)


def _printed(attrs) -> str:
    return ", ".join(repr(p) for p in _patch_attrs(attrs, None, None))


def _patches_shape(arg_shapes, attrs, node=None, op=None):
    (x,) = arg_shapes
    hw = _spatial(x, "x", node, op)
    kernel, *rest = _patch_attrs(attrs, node, op)
    ho, wo = _out_hw(hw, kernel, *rest, node, op)
    return (x[1] * kernel[0] * kernel[1], x[0], ho * wo)


def _reference_patches(values, attrs):
    (x,) = values
    kernel, stride, padding, dilation = _patch_attrs(attrs, None, None)
    out_hw = _out_hw(x.shape[2:], kernel, stride, padding, dilation, None, None)
    n, c = x.shape[:2]
    out = np.zeros((c, kernel[0], kernel[1], n) + out_hw, dtype=x.dtype)
    for i, j, rows, cols, xp in _taps(x, *kernel, out_hw, stride, padding, dilation):
        out[:, i, j] = xp[:, :, rows, cols].transpose(1, 0, 2, 3)
    return out.reshape(c * kernel[0] * kernel[1], n, out_hw[0] * out_hw[1])


register(Op(
    "conv2d_patches", 1, _patches_shape, attrs={"kernel": None, **_CONV_ATTRS}, required=("kernel",),
    vjp=lambda node, args, d, k: d.editor.add(
        "conv2d_patches_grad", [d], {**_window_attrs(_attrs(node)), "shape": tuple(args[0].shape[2:])}),
    reference=_reference_patches,
    lower=lambda ctx, args, attrs, node: f"_conv2d_patches({args[0]}, {_printed(attrs)})",
    doc="im2col: x's kernel windows as patches (C kh kw, N, Ho Wo), a row per (channel, tap)",
))


def _patches_grad_shape(arg_shapes, attrs, node=None, op=None):
    (d,) = arg_shapes
    hw = pair(attrs.get("shape"), "shape", node, op)
    kernel, *rest = _patch_attrs(attrs, node, op)
    ho, wo = _out_hw(hw, kernel, *rest, node, op)
    taps = kernel[0] * kernel[1]
    if len(d) != 3 or not isinstance(d[0], numbers.Integral) or d[0] % taps or d[2] != ho * wo:
        raise ShapeError(f"{describe(node, op)}: the patches' cotangent has shape {shapes.fmt(d)}, expected "
                         f"(C*{taps}, N, {ho * wo})")
    return (d[1], d[0] // taps) + hw


def _reference_patches_grad(values, attrs):
    (d,) = values
    kernel, stride, padding, dilation = _patch_attrs(attrs, None, None)
    h, wd = attrs["shape"]
    c, n = d.shape[0] // (kernel[0] * kernel[1]), d.shape[1]
    out_hw = _out_hw((h, wd), kernel, stride, padding, dilation, None, None)
    d = d.reshape(c, kernel[0], kernel[1], n, *out_hw)
    out = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]), dtype=d.dtype)
    for i, j, rows, cols, _ in _taps(np.zeros((n, c, h, wd)), *kernel, out_hw, stride, padding, dilation):
        out[:, :, rows, cols] += d[:, i, j].transpose(1, 0, 2, 3)
    return out[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd]


register(Op(
    "conv2d_patches_grad", 1, _patches_grad_shape, attrs={"kernel": None, **_CONV_ATTRS, "shape": None},
    required=("kernel", "shape"),
    vjp=lambda node, args, e, k: e.editor.add("conv2d_patches", [e], _window_attrs(_attrs(node))),
    reference=_reference_patches_grad,
    lower=lambda ctx, args, attrs, node: (f"_conv2d_patches_grad({args[0]}, {tuple(attrs['shape'])!r}, "
                                          f"{_printed(attrs)})"),
    doc="col2im: each patch entry's cotangent added back where it was read (the VJP of conv2d_patches)",
))


# -- the matmul of the patches with the kernel, and its two gradients -------------------------
def _patches_of(p, w, node, op):
    """(K, L) of the patches p (K, N, L), checked against the kernel w (O, C, kh, kw)."""
    o, c, kh, kw = _kernel_shape(w, w[1] if len(w) == 4 else None, node, op)
    if len(p) != 3 or p[0] != c * kh * kw:
        raise ShapeError(f"{describe(node, op)}: patches {shapes.fmt(p)} do not fit the kernel {shapes.fmt(w)}: "
                         f"expected ({c * kh * kw}, N, Ho*Wo)")
    return p[0], p[2]


def _size(attrs, length, node, op):
    size = pair(attrs.get("size"), "size", node, op)
    if size[0] * size[1] != length:
        raise ShapeError(f"{describe(node, op)}: size {size} holds {size[0] * size[1]} positions, the patches {length}")
    return size


def _conv_matmul_shape(arg_shapes, attrs, node=None, op=None):
    p, w = arg_shapes
    _, length = _patches_of(p, w, node, op)
    return (p[1], w[0]) + _size(attrs, length, node, op)


def _matmul_vjp(node, args, g, k):
    p, w = args
    if k == 0:
        return g.editor.add("conv2d_matmul_grad_patches", [g, w])
    return g.editor.add("conv2d_matmul_grad_kernel", [p, g], {"shape": tuple(w.shape)})


def _reference_conv_matmul(values, attrs):
    p, w = values
    out = np.einsum("ok,knl->nol", w.reshape(w.shape[0], -1), p)
    return out.reshape(out.shape[:2] + tuple(attrs["size"]))


register(Op(
    "conv2d_matmul", 2, _conv_matmul_shape, attrs={"size": None}, required=("size",), vjp=_matmul_vjp,
    reference=_reference_conv_matmul,
    lower=lambda ctx, args, attrs, node: f"_conv2d_matmul({args[0]}, {args[1]}, {tuple(attrs['size'])!r})",
    doc="the convolution from its patches (C kh kw, N, Ho Wo) and kernel: one matmul, (N, C_out) + size",
))


def _grad_patches_shape(arg_shapes, attrs, node=None, op=None):
    g, w = arg_shapes
    o, c, kh, kw = _kernel_shape(w, w[1] if len(w) == 4 else None, node, op)
    if len(g) != 4 or g[1] != o:
        raise ShapeError(f"{describe(node, op)}: the cotangent has shape {shapes.fmt(g)}, expected (N, {o}, Ho, Wo)")
    return (c * kh * kw, g[0], g[2] * g[3])


def _grad_patches_vjp(node, args, d, k):
    g, w = args
    if k == 0:
        return d.editor.add("conv2d_matmul", [d, w], {"size": tuple(g.shape[2:])})
    return d.editor.add("conv2d_matmul_grad_kernel", [d, g], {"shape": tuple(w.shape)})


register(Op(
    "conv2d_matmul_grad_patches", 2, _grad_patches_shape, vjp=_grad_patches_vjp,
    reference=lambda values, attrs: np.einsum(
        "nol,ok->knl", values[0].reshape(values[0].shape[0], values[0].shape[1], -1),
        values[1].reshape(values[1].shape[0], -1)),
    lower=lambda ctx, args, attrs, node: f"_conv2d_matmul_grad_patches({args[0]}, {args[1]})",
    doc="the cotangent of conv2d_matmul's patches from its output's g and the kernel",
))


def _grad_kernel_shape(arg_shapes, attrs, node=None, op=None):
    p, g = arg_shapes
    shape = attrs.get("shape")
    w = tuple(shape) if isinstance(shape, (tuple, list)) else ()
    _, length = _patches_of(p, w, node, op)
    if len(g) != 4 or g[0] != p[1] or g[1] != w[0] or g[2] * g[3] != length:
        raise ShapeError(f"{describe(node, op)}: the cotangent has shape {shapes.fmt(g)}, expected "
                         f"({p[1]}, {w[0]}, Ho, Wo) with Ho*Wo = {length}")
    return w


def _grad_kernel_vjp(node, args, e, k):
    p, g = args
    if k == 0:
        return e.editor.add("conv2d_matmul_grad_patches", [g, e])
    return e.editor.add("conv2d_matmul", [p, e], {"size": tuple(g.shape[2:])})


register(Op(
    "conv2d_matmul_grad_kernel", 2, _grad_kernel_shape, attrs={"shape": None}, required=("shape",),
    vjp=_grad_kernel_vjp,
    reference=lambda values, attrs: np.einsum(
        "knl,nol->ok", values[0], values[1].reshape(values[1].shape[0], values[1].shape[1], -1)).reshape(
            attrs["shape"]),
    lower=lambda ctx, args, attrs, node: (f"_conv2d_matmul_grad_kernel({args[0]}, {args[1]}, "
                                          f"{tuple(attrs['shape'])!r})"),
    doc="the cotangent of conv2d_matmul's kernel (of shape shape) from the patches and its output's g",
))


# -- pooling ---------------------------------------------------------------------------------
def _pool_attrs(attrs, node, op):
    kernel = pair(attrs.get("kernel"), "kernel", node, op)
    stride = attrs.get("stride")
    return kernel, (kernel if stride is None else pair(stride, "stride", node, op))


def _pool_shape(arg_shapes, attrs, node=None, op=None):
    (x,) = arg_shapes
    hw = _spatial(x, "x", node, op)
    kernel, stride = _pool_attrs(attrs, node, op)
    return tuple(x[:2]) + _out_hw(hw, kernel, stride, (0, 0), (1, 1), node, op)


def _pool_printed(attrs) -> str:
    return ", ".join(repr(p) for p in _pool_attrs(attrs, None, None))


def _pool_only(attrs) -> dict:
    return {"kernel": attrs["kernel"], "stride": attrs["stride"]}


def _reference_pool(combine):
    """A pooling written window by window: ``combine`` of each (n, c, kh, kw) window."""
    def reference(values, attrs):
        (x,) = values
        (kh, kw), (sh, sw) = _pool_attrs(attrs, None, None)
        ho, wo = _out_hw(x.shape[2:], (kh, kw), (sh, sw), (0, 0), (1, 1), None, None)
        out = np.empty(x.shape[:2] + (ho, wo), dtype=x.dtype)
        for y in range(ho):
            for z in range(wo):
                out[:, :, y, z] = combine(x[:, :, y * sh:y * sh + kh, z * sw:z * sw + kw], axis=(2, 3))
        return out

    return reference


_POOL_ATTRS = {"kernel": 2, "stride": None}

register(Op(
    "max_pool2d", 1, _pool_shape, attrs=dict(_POOL_ATTRS), function="max_pool2d", kink=MAX_POOL_TIES,
    # the pooled value goes back in: the gradient finds each window's maximum without recomputing it
    vjp=lambda node, args, g, k: g.editor.add("max_pool2d_grad", [args[0], node, g], _pool_only(_attrs(node))),
    reference=_reference_pool(np.max),
    lower=lambda ctx, args, attrs, node: f"_max_pool2d({args[0]}, {_pool_printed(attrs)})",
    doc="the largest element of each kernel window of x (N, C, H, W); stride defaults to the kernel",
))


def _max_pool_grad_shape(arg_shapes, attrs, node=None, op=None):
    x, y, g = arg_shapes
    want = _pool_shape([x], attrs, node, op)
    for what, shape in (("the pooled value", y), ("the cotangent", g)):
        if tuple(shape) != tuple(want):
            raise ShapeError(f"{describe(node, op)}: {what} has shape {shapes.fmt(shape)}, expected {shapes.fmt(want)}")
    return tuple(x)


def _reference_max_pool_grad(values, attrs):
    x, _, g = values  # finds the maxima itself
    (kh, kw), (sh, sw) = _pool_attrs(attrs, None, None)
    out = np.zeros_like(x)
    for y in range(g.shape[2]):
        for z in range(g.shape[3]):
            window = x[:, :, y * sh:y * sh + kh, z * sw:z * sw + kw].reshape(x.shape[0], x.shape[1], -1)
            first = window.argmax(axis=2)  # numpy's argmax: the first maximal element
            for n in range(x.shape[0]):
                for c in range(x.shape[1]):
                    i, j = divmod(int(first[n, c]), kw)
                    out[n, c, y * sh + i, z * sw + j] += g[n, c, y, z]
    return out


def _lower_max_pool_grad(ctx, args, attrs, node):
    return [f"# {MAX_POOL_TIES}",
            f"{{out}} = _max_pool2d_grad({args[0]}, {args[1]}, {args[2]}, {_pool_printed(attrs)})"]


register(Op(
    "max_pool2d_grad", 3, _max_pool_grad_shape, attrs=dict(_POOL_ATTRS), kink=MAX_POOL_TIES,
    reference=_reference_max_pool_grad, lower=_lower_max_pool_grad,
    doc="the cotangent of max_pool2d's x from x, y = max_pool2d(x) and y's g: each window's g at its first maximum",
))

register(Op(
    "avg_pool2d", 1, _pool_shape, attrs=dict(_POOL_ATTRS), function="avg_pool2d",
    vjp=lambda node, args, g, k: g.editor.add(
        "avg_pool2d_grad", [g], {**_pool_only(_attrs(node)), "shape": tuple(args[0].shape[2:])}),
    reference=_reference_pool(np.mean),
    lower=lambda ctx, args, attrs, node: f"_avg_pool2d({args[0]}, {_pool_printed(attrs)})",
    doc="the mean of each kernel window of x (N, C, H, W); stride defaults to the kernel",
))


def _avg_pool_grad_shape(arg_shapes, attrs, node=None, op=None):
    (g,) = arg_shapes
    hw = pair(attrs.get("shape"), "shape", node, op)
    kernel, stride = _pool_attrs(attrs, node, op)
    want = _out_hw(hw, kernel, stride, (0, 0), (1, 1), node, op)
    if len(g) != 4 or tuple(g[2:]) != want:
        raise ShapeError(f"{describe(node, op)}: the cotangent has shape {shapes.fmt(g)}, expected (N, C) + {want}")
    return tuple(g[:2]) + hw


def _reference_avg_pool_grad(values, attrs):
    (g,) = values
    (kh, kw), (sh, sw) = _pool_attrs(attrs, None, None)
    out = np.zeros(g.shape[:2] + tuple(attrs["shape"]), dtype=g.dtype)
    for y in range(g.shape[2]):
        for z in range(g.shape[3]):
            out[:, :, y * sh:y * sh + kh, z * sw:z * sw + kw] += g[:, :, y:y + 1, z:z + 1] / (kh * kw)
    return out


register(Op(
    "avg_pool2d_grad", 1, _avg_pool_grad_shape, attrs={**_POOL_ATTRS, "shape": None},
    vjp=lambda node, args, d, k: d.editor.add("avg_pool2d", [d], _pool_only(_attrs(node))),
    reference=_reference_avg_pool_grad,
    lower=lambda ctx, args, attrs, node: (f"_avg_pool2d_grad({args[0]}, {tuple(attrs['shape'])!r}, "
                                          f"{_pool_printed(attrs)})"),
    doc="the cotangent of avg_pool2d's x (spatial size shape): each window's g spread evenly",
))
