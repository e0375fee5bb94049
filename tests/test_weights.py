"""Saved weights: .npz by param name, byte-identical, checked on load, no pickles; they load
back into a program, its inference program and the module prog.save writes."""

import importlib.util

import numpy as np
import pytest

import graphc as gc


def trained(tmp_path):
    graph, feeds = gc.zoo.blobs()
    prog = gc.compile(graph)
    params = {name: feeds[name] for name in graph.params}
    gc.train(prog, params, {"x": feeds["x"], "y": feeds["y"]}, epochs=3, optimizer=gc.optim.Adam(lr=0.05))
    return prog, feeds, params


def test_round_trip_by_param_name_and_byte_identical(tmp_path):
    prog, _, params = trained(tmp_path)
    path = gc.save_weights(tmp_path / "w.npz", params, prog=prog)
    with np.load(path) as plain:  # an ordinary numpy archive
        assert sorted(plain.files) == sorted(prog.graph.graph["params"])
    loaded = gc.load_weights(path, prog)
    assert list(loaded) == prog.graph.graph["params"]
    for name in params:
        np.testing.assert_array_equal(loaded[name], params[name])
    again = gc.save_weights(tmp_path / "again.npz", params, prog=prog)
    assert again.read_bytes() == path.read_bytes()


def test_loaded_weights_feed_the_program_and_the_saved_module(tmp_path):
    prog, feeds, params = trained(tmp_path)
    loaded = gc.load_weights(gc.save_weights(tmp_path / "w.npz", params, prog=prog), prog)
    inputs = {"x": feeds["x"], "y": feeds["y"]}
    want = prog.forward({**inputs, **params})
    np.testing.assert_array_equal(prog.predict({"x": feeds["x"], **loaded})["g"], want["g"])

    module_path = prog.save(tmp_path / "model_gen.py")
    spec = importlib.util.spec_from_file_location("model_gen", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    got = module.forward({**inputs, **loaded})
    np.testing.assert_allclose(got["g"], want["g"], rtol=1e-13, atol=0)


def test_weights_that_do_not_fit_are_feed_errors(tmp_path):
    prog, _, params = trained(tmp_path)
    short = gc.save_weights(tmp_path / "short.npz", {k: v for k, v in params.items() if k != "b2"})
    with pytest.raises(gc.FeedError, match="lacks param 'b2'"):
        gc.load_weights(short, prog)
    extra = gc.save_weights(tmp_path / "extra.npz", {**params, "W9": np.zeros(2)})
    with pytest.raises(gc.FeedError, match="has 'W9', which is not a param"):
        gc.load_weights(extra, prog)
    shaped = gc.save_weights(tmp_path / "shape.npz", {**params, "b1": np.zeros(5)})
    with pytest.raises(gc.FeedError, match=r"weight 'b1' has shape \(5,\)"):
        gc.load_weights(shaped, prog)
    with pytest.raises(gc.FeedError, match="param 'W1' is missing"):
        gc.save_weights(tmp_path / "none.npz", {}, prog=prog)


def test_a_file_with_pickles_or_no_archive_is_refused(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, W1=np.array([{"not": "numbers"}], dtype=object))
    with pytest.raises(gc.FeedError, match="not a weights file") as refused:
        gc.load_weights(pickled)
    assert "allow_pickle" not in str(refused.value)  # never advise unpickling a file from elsewhere
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(gc.FeedError, match="not a weights file"):
        gc.load_weights(garbage)


def test_an_entry_that_unpacks_beyond_its_shape_is_refused_before_reading(tmp_path):
    """A few KB of zeros that would unpack to 80 MB for a param of 3 numbers."""
    prog, _, params = trained(tmp_path)
    bomb = {**params, "b2": np.zeros(10_000_000)}
    path = gc.save_weights(tmp_path / "bomb.npz", bomb)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(gc.FeedError, match=r"weight 'b2' unpacks to 80000128 bytes, more than its shape \(3,\)"):
        gc.load_weights(path, prog)
