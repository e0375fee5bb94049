"""The CNN benchmark's hand-written step is the same computation as graphc's."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cnn as bench  # noqa: E402


def test_hand_written_cnn_step_agrees_with_graphc_over_three_steps():
    bench.check_equal(32)  # raises on a loss or param that differs by more than 1e-12
