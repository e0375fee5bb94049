"""Small real data sets that ship with graphc (no download).

:func:`digits`: the UCI optical recognition of handwritten digits, 8x8 images of the
digits 0 to 9, in a fixed split of 1,437 training and 360 test images. Where it comes from
and its licence: ``LICENSE-digits.txt`` next to this file.

>>> import graphc as gc
>>> (X_train, y_train), (X_test, y_test) = gc.datasets.digits()
>>> X_train.shape, y_train.shape, X_test.shape, y_test.shape
((1437, 64), (1437,), (360, 64), (360,))
>>> X_train.dtype, y_train.dtype, float(X_train.max())
(dtype('float64'), dtype('int64'), 1.0)
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from ..errors import GraphcError

__all__ = ["digits", "one_hot", "DIGITS_FILE"]

DIGITS_FILE = "digits.npz"
_KEYS = ("X_train", "y_train", "X_test", "y_test")

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def digits(images: bool = False) -> Split:
    """``((X_train, y_train), (X_test, y_test))``: 1,437 and 360 handwritten digits.

    X holds float64 pixels in [0, 1] (the data set's counts 0..16 divided by 16), one
    row of 64 per image, or with ``images=True`` arrays of shape (N, 1, 8, 8) (NCHW, for
    convolutions). y holds the digits as int64 labels of shape (N,). The split is fixed
    (stratified: 35 to 37 test images per digit), the same on every machine.
    """
    with resources.files(__package__).joinpath(DIGITS_FILE).open("rb") as stream:
        with np.load(stream, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in _KEYS}
    shape = (-1, 1, 8, 8) if images else (-1, 64)
    X_train, X_test = (arrays[k].reshape(shape).astype(np.float64) / 16.0 for k in ("X_train", "X_test"))  # noqa: N806
    y_train, y_test = (arrays[k].astype(np.int64) for k in ("y_train", "y_test"))
    return (X_train, y_train), (X_test, y_test)


def one_hot(labels, classes: int) -> np.ndarray:
    """float64 one-hot rows for int labels of shape (N,): row k has a 1 in column labels[k].

    >>> one_hot([2, 0], 3)
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise GraphcError(f"one_hot needs integer labels of shape (N,), found {labels.dtype} of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise GraphcError(f"one_hot: labels must lie in 0..{classes - 1}, found {labels.min()}..{labels.max()}")
    return np.eye(classes)[labels]
