"""The benchmark's hand-written Adam and SGD steps are the same computation as graphc's."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import optimizers as bench  # noqa: E402

import graphc as gc  # noqa: E402


def test_hand_written_steps_agree_with_graphc_over_five_steps():
    graph, inputs, params = bench.make_case(32)
    prog = gc.compile(graph)
    for hand, optimizer in ((None, gc.optim.Adam(lr=bench.LR, betas=bench.BETAS, eps=bench.EPS)),
                            (bench.hand_sgd, gc.optim.SGD(lr=bench.LR))):
        mine = {k: v.copy() for k, v in params.items()}
        theirs = {**inputs, **{k: v.copy() for k, v in params.items()}}
        hand = bench.HandAdam(mine) if hand is None else hand
        step = prog.train_step(optimizer)
        for _ in range(5):
            assert abs(hand(inputs["x"], inputs["y"], mine) - step(theirs)) < 1e-12
        for name in bench.PARAMS:
            np.testing.assert_allclose(mine[name], theirs[name], rtol=0, atol=1e-12)
        assert not np.array_equal(mine["W1"], params["W1"])
