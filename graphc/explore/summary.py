"""A tensor as the explorer shows it: shape, min/mean/max, a histogram, zeros, entries."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["num", "tensor_summary", "ENTRIES_MAX", "BINS"]

ENTRIES_MAX = 16  # tensors up to this size list their entries
BINS = 12


def num(x: float):
    """A float for JSON: 6 significant digits; NaN and infinities as strings."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{x:.6g}")


def tensor_summary(value) -> dict:
    """Shape, min/mean/max, a histogram, zero and NaN/Inf counts, and the entries of a small tensor.

    >>> s = tensor_summary([0.0, 1.0, 2.0, float("nan")])
    >>> s["min"], s["max"], s["zeros"], s["bad"], s["entries"]
    (0.0, 2.0, 1, 1, [0.0, 1.0, 2.0, 'nan'])
    """
    array = np.asarray(value, dtype=np.float64)
    flat = array.ravel()
    finite = flat[np.isfinite(flat)]
    out: dict = {"shape": list(array.shape), "size": int(flat.size), "zeros": int(np.count_nonzero(flat == 0)),
                 "bad": int(flat.size - finite.size)}
    if finite.size:
        out.update(min=num(finite.min()), mean=num(finite.mean()), max=num(finite.max()))
        if finite.size > 1 and finite.min() < finite.max():
            counts, edges = np.histogram(finite, bins=BINS)
            out["hist"] = [int(c) for c in counts]
            out["edges"] = [num(edges[0]), num(edges[-1])]
    if flat.size <= ENTRIES_MAX:
        out["entries"] = [num(float(v)) for v in flat]
    return out


