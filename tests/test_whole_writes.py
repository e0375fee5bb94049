"""Files graphc writes for the user are replaced whole or not at all, and a custom op's
kink text, printed into generated code as a comment, is one line of printable text."""

from __future__ import annotations

import os

import numpy as np
import pytest

import graphc as gc


def small_program():
    g = gc.Graph("small")
    w = g.param("w", shape=(2,))
    g.output("loss", gc.sum(w * w))
    return gc.compile(g)


def test_a_saved_module_that_fails_to_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "model_gen.py"
    target.write_text("# the old module\n")

    def full_disk(_descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        small_program().save(target)
    assert target.read_text() == "# the old module\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_gen.py"]  # no temporary left behind


def test_a_saved_module_replaces_the_old_one_and_runs(tmp_path):
    target = tmp_path / "model_gen.py"
    target.write_text("# the old module\n")
    prog = small_program()
    assert prog.save(target).read_text() == prog.source


def test_weights_refused_halfway_leave_the_old_file(tmp_path):
    target = tmp_path / "weights.npz"
    gc.save_weights(target, {"a": np.ones(2)})
    before = target.read_bytes()
    with pytest.raises(gc.FeedError, match="'b'"):
        gc.save_weights(target, {"a": np.zeros(2), "b": np.array(["text"])})
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"]


@pytest.mark.parametrize("kink", ["a\0b", "two\nlines", "lone \ud800 surrogate", 3])
def test_a_kink_that_is_not_one_printable_line_is_refused_naming_the_op(kink):
    with pytest.raises(gc.GraphError, match="custom op 'kinky'.*kink must be one line"):
        gc.elementwise("kinky", lambda x: abs(x), kink=kink)
