"""Graphs and programs show inline in Jupyter as their drawings."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import graphc as gc


def _svg_of(bundle: dict) -> ET.Element:
    assert "image/svg+xml" in bundle and "text/plain" in bundle
    return ET.fromstring(bundle["image/svg+xml"])


def test_a_graph_displays_as_svg():
    g, _ = gc.zoo.recall_xor()
    root = _svg_of(g._repr_mimebundle_())
    text = " ".join(t for t in root.itertext())
    assert "sigma" in text and "matmul" in text


def test_a_program_displays_its_final_graph():
    g, _ = gc.zoo.relu_neuron()
    prog = gc.compile(g)
    root = _svg_of(prog._repr_mimebundle_())
    text = " ".join(t for t in root.itertext())
    assert "d_w" in text  # the backward pass is part of the final graph
