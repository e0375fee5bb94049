"""The compile cache on disk, when asked: ``gc.compile(graph, cache_dir=path)``, or the
environment variable ``GRAPHC_CACHE_DIR``, makes a compile in a new process near free.

An entry is one JSON file, ``<key>.json``, named by the compile's content key (see
:mod:`graphc.compile_cache`: the graph's content, the options and a digest of graphc's own
source, so another graph, other options or another graphc never find it). It holds the
generated module's text and a sha256 over it; nothing else is stored. A program read from
disk runs that module at once and works out its stages and schedule again (by compiling)
only when something first reads them (``prog.stages``, ``prog.plan``, a drawing,
``prog.to``).

Trust: the entry's source is run as the module of the program, exactly as a module written
by ``prog.save`` is run when imported, so the directory is trusted as such a file is:
point ``cache_dir`` at a directory of your own (graphc makes it readable by you alone).
An entry is refused, and the graph compiled afresh (and the entry written again), when it
is not a regular file of the current user that no one else may write, is not JSON of the
expected form and key, or its text does not match its sha256 (a torn or edited file).
JSON is parsed as data: no pickle, no eval of anything but the verified module text.

>>> import tempfile, graphc as gc
>>> folder = tempfile.mkdtemp()
>>> g = gc.Graph("disk"); x = g.input("x", shape=(2,)); _ = g.output("y", gc.exp(x))
>>> first = gc.compile(g, cache_dir=folder)         # compiled, and written to the folder
>>> [p.suffix for p in __import__("pathlib").Path(folder).iterdir()]
['.json']
"""

from __future__ import annotations

import collections.abc
import gc
import hashlib
import json
import os
import stat
import warnings
from pathlib import Path

from .errors import FileError
from .files import replace_file
from .lower.source import GeneratedCode

__all__ = ["directory", "read", "write", "keep", "FORMAT", "ENVIRONMENT", "Later", "LaterStages", "LaterPlan", "COUNTS"]

FORMAT = "graphc compile cache 1"
ENVIRONMENT = "GRAPHC_CACHE_DIR"
_TEXTS = ("source", "forward_source", "backward_source")  # GeneratedCode's fields, all text


def directory(cache_dir: str | os.PathLike | None) -> Path | None:
    """The folder of the disk cache: ``cache_dir``, else ``$GRAPHC_CACHE_DIR``, else None (off)."""
    if cache_dir is None:
        cache_dir = os.environ.get(ENVIRONMENT) or None
        if cache_dir is None:
            return None
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise FileError(f"cache_dir must be a path (str or os.PathLike), found {type(cache_dir).__name__}; "
                        "pass cache_dir='path/to/folder', or leave it out for no disk cache")
    return Path(cache_dir)


def _path(folder: Path, key: str) -> Path:
    return folder / f"{key}.json"


def _digest(key: str, texts: dict[str, str]) -> str:
    """sha256 of the key and each text, each led by its length (no two contents spell alike)."""
    digest = hashlib.sha256(f"{len(key)}:{key}".encode())
    for name in _TEXTS:
        data = texts[name].encode("utf-8", "surrogatepass")
        digest.update(f"{name}:{len(data)}:".encode() + data)
    return digest.hexdigest()


def _ours(info: os.stat_result) -> bool:
    """A regular file of the current user that neither group nor others may write."""
    if not stat.S_ISREG(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


class Counts:
    """What this process's compiles found on disk: ``hits``, ``misses`` (no entry) and
    ``refused`` (an entry not ours, torn, edited or of another form: compiled afresh)."""

    def __init__(self):
        self.hits = self.misses = self.refused = 0

    def __repr__(self) -> str:
        return f"Counts(hits={self.hits}, misses={self.misses}, refused={self.refused})"


COUNTS = Counts()


def read(folder: Path, key: str) -> GeneratedCode | None:
    """The code of entry ``key`` if it is there, ours, whole and unchanged; else None."""
    path = _path(folder, key)
    try:
        info = os.lstat(path)
    except OSError:
        COUNTS.misses += 1
        return None
    code = _entry(path, info, key)
    if code is None:
        COUNTS.refused += 1
    else:
        COUNTS.hits += 1
    return code


def _entry(path: Path, info: os.stat_result, key: str) -> GeneratedCode | None:
    if not _ours(info):
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable, not UTF-8, not JSON
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    if not all(isinstance(data.get(name), str) for name in (*_TEXTS, "sha256")):
        return None
    texts = {name: data[name] for name in _TEXTS}
    if data["sha256"] != _digest(key, texts):
        return None
    return GeneratedCode(**texts)


def keep(folder: Path, key: str, code: GeneratedCode) -> None:
    """Write entry ``key`` unless there is one (a program from the memory cache)."""
    if not _path(folder, key).exists():
        write(folder, key, code)


def write(folder: Path, key: str, code: GeneratedCode) -> None:
    """Keep ``code`` as entry ``key``, written whole or not at all (files.replace_file).

    A folder that cannot be made is a FileError; an entry that cannot be written (a full
    disk) is a warning: the program is compiled, only not kept."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise FileError(f"cache_dir {str(folder)!r} cannot be used as a folder: {error.strerror or error}; "
                        "pass a folder you can write, or leave cache_dir out") from None
    texts = {name: getattr(code, name) for name in _TEXTS}
    data = {"format": FORMAT, "key": key, "sha256": _digest(key, texts), **texts}
    path = _path(folder, key)
    try:
        replace_file(path, json.dumps(data).encode("utf-8"))
        os.chmod(path, 0o600)  # ours alone: read() refuses an entry others could have written
    except OSError as error:
        warnings.warn(f"graphc could not write its disk cache entry {str(path)!r}: {error}", stacklevel=3)


# -- what a program read from disk works out when first asked --------------------------------
class Later:
    """What the pipeline makes (``make()``: the dict of Program's arguments), made once, when
    first asked for: a program read from disk has its module and none of its stages."""

    def __init__(self, make):
        self._make, self._made = make, None

    def __call__(self) -> dict:
        if self._made is None:
            collecting = gc.isenabled()
            gc.disable()  # as gc.compile does: compiling makes many objects that all live on
            try:
                self._made = self._make()
            finally:
                if collecting:
                    gc.enable()
            self._make = None
        return self._made


class LaterStages(collections.abc.Mapping):
    """``made[part]`` (the stages, or the inference stages), compiled when first read."""

    def __init__(self, later: Later, part: str):
        self._later, self._part = later, part

    def _stages(self) -> dict:
        return self._later()[self._part]

    def __getitem__(self, name: str):
        return self._stages()[name]

    def __iter__(self):
        return iter(self._stages())

    def __len__(self) -> int:
        return len(self._stages())

    def __reversed__(self):
        return reversed(self._stages())

    def __repr__(self) -> str:
        return f"LaterStages({self._part!r}, made={self._later._made is not None})"


class LaterPlan:
    """The schedule, compiled when first read. Whether steps run on a pool is known without
    it: never with one thread (``parallel`` is None), which is what a program asks at once."""

    def __init__(self, later: Later, threads: int):
        self._later, self._threads = later, threads

    def __getattr__(self, name: str):
        if name.startswith("__"):  # copy, pickle and friends: this is not a plan's attribute
            raise AttributeError(name)
        if name == "parallel" and self._threads == 1:
            return None
        return getattr(self._later()["plan"], name)

    def __repr__(self) -> str:
        return f"LaterPlan(made={self._later._made is not None})"
