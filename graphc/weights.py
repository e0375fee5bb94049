"""Saved weights: a numpy ``.npz`` file with one array per param, keyed by the param's name.

The file is an ordinary ``numpy.load``-able archive (written without pickles, and read
with ``allow_pickle=False``, so loading one never runs code), and byte-identical for the
same weights. Loaded weights feed a program, its inference program (``prog.predict``) or
the module ``prog.save`` wrote, all keyed by the graph's own names.

>>> import numpy as np, tempfile, pathlib, graphc as gc
>>> path = pathlib.Path(tempfile.mkdtemp()) / "weights.npz"
>>> _ = gc.save_weights(path, {"W1": np.eye(2), "b1": np.zeros(2)})
>>> sorted(gc.load_weights(path))
['W1', 'b1']
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import sympy

from . import ir
from .errors import FeedError
from .files import replace_file

__all__ = ["save_weights", "load_weights"]

_EPOCH = (1980, 1, 1, 0, 0, 0)  # a fixed timestamp in the archive: the same weights, the same bytes
_HEADER = 4096  # room for a .npy header (numpy writes them in multiples of 64 bytes, a few hundred at most)


def _param_names(prog) -> list[str]:
    return list(prog.graph.graph[ir.PARAMS])


def save_weights(path: str | Path, params: Mapping[str, np.ndarray], prog=None) -> Path:
    """Write ``params`` (name -> array; with ``prog``, only that program's params) to ``path``."""
    path = Path(path)
    names = _param_names(prog) if prog is not None else sorted(params, key=str)
    missing = [name for name in names if name not in params]
    if missing:
        raise FeedError(f"cannot save weights: param {missing[0]!r} is missing; pass every one of {names!r}")
    packed = io.BytesIO()  # the whole archive first: a refused array leaves no half-written file
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            array = np.asarray(params[name])
            if array.dtype.kind not in "biuf":
                raise FeedError(f"cannot save weight {name!r}: dtype {array.dtype} is not a real number type")
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, buffer.getvalue())
    return replace_file(path, packed.getvalue())


def load_weights(path: str | Path, prog=None) -> dict[str, np.ndarray]:
    """The arrays in ``path`` by name; with ``prog``, checked to be exactly its params, of
    their declared shapes, as that program's dtypes."""
    try:
        if prog is not None:  # before anything is decompressed: a small file may unpack to gigabytes
            _check_entries(path, prog)
        with np.load(Path(path), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (ValueError, zipfile.BadZipFile, EOFError, OSError):
        # numpy's own message suggests allow_pickle=True: never for a file from elsewhere
        raise FeedError(f"{path}: not a weights file (a numpy .npz of real arrays, without pickles)") from None
    if prog is None:
        return arrays
    return _checked(arrays, prog, path)


def _check_entries(path, prog) -> None:
    """The archive holds exactly the program's params, none unpacking to more bytes than
    its declared shape takes (at 16 bytes a number, plus the array header)."""
    with zipfile.ZipFile(path) as archive:
        sizes = {info.filename.removesuffix(".npy"): info.file_size for info in archive.infolist()}
    names = _param_names(prog)
    missing = [name for name in names if name not in sizes]
    extra = sorted(name for name in sizes if name not in names)
    if missing or extra:
        what = f"lacks param {missing[0]!r}" if missing else f"has {extra[0]!r}, which is not a param"
        raise FeedError(f"{path}: the weights do not fit program {prog.name!r}: the file {what}; "
                        f"its params are {names!r}")
    for name in names:
        shape = tuple(prog.graph.nodes[name][ir.SHAPE])
        if any(isinstance(d, sympy.Symbol) for d in shape):
            continue
        limit = 16 * math.prod(shape) + _HEADER
        if sizes[name] > limit:
            raise FeedError(f"{path}: weight {name!r} unpacks to {sizes[name]} bytes, more than its shape {shape} "
                            f"can hold ({limit}); the file is not weights for program {prog.name!r}")


def _checked(arrays: dict[str, np.ndarray], prog, path) -> dict[str, np.ndarray]:
    names = _param_names(prog)
    out = {}
    for name in names:
        data = prog.graph.nodes[name]
        want = tuple(data[ir.SHAPE])
        got = arrays[name].shape
        if len(want) != len(got) or any(not isinstance(w, sympy.Symbol) and w != g for w, g in zip(want, got)):
            raise FeedError(f"{path}: weight {name!r} has shape {got}, program {prog.name!r} declares {want}")
        if arrays[name].dtype.kind not in "biuf":
            raise FeedError(f"{path}: weight {name!r} has dtype {arrays[name].dtype}, expected real numbers")
        out[name] = arrays[name].astype(data[ir.DTYPE])
    return out
