"""Argument types the command line's subcommands share (argparse ``type=`` functions)."""

from __future__ import annotations

import argparse

__all__ = ["positive_int", "non_negative_int"]


def positive_int(text: str) -> int:
    """``text`` as an integer >= 1, or argparse's one-line error.

    >>> positive_int("3")
    3
    """
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text}")
    return value


def non_negative_int(text: str) -> int:
    """``text`` as an integer >= 0, or argparse's one-line error.

    >>> non_negative_int("0")
    0
    """
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, found {text}")
    return value
