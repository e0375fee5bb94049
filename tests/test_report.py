"""The HTML report: self-contained, escaped, complete, and really drawn in a headless Chromium.

Chromium comes from the Debian packages: installed here (as root) when missing, and the
browser tests are skipped, saying why, when it cannot be.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

import graphc as gc
from graphc.render import backends
from graphc.render.highlight import highlight
from graphc.report import report_html

needs_dot = pytest.mark.skipif(backends.available("svg") is None, reason="no Graphviz to draw the stages")


@pytest.fixture(scope="module")
def neuron_report(tmp_path_factory):
    g, feeds = gc.zoo.relu_neuron(w=-1.0)
    prog = gc.compile(g)
    path = prog.report(tmp_path_factory.mktemp("report") / "neuron.html", feeds=feeds)
    return prog, path, path.read_text(encoding="utf-8")


@needs_dot
def test_report_holds_every_stage_code_stats_check_and_math(neuron_report):
    prog, _, page = neuron_report
    assert page.count("<svg") == len(prog.stages)
    stage_order = [m for m in re.findall(r'<figure id="stage-([^"]+)"', page)]
    assert stage_order == list(prog.stages)
    assert "def forward_pass" in html.unescape(re.sub(r"<[^>]+>", "", page))
    assert 'class="k">def</span>' in page  # highlighted
    assert "Pass statistics" in page and "<table class=\"check\">" in page
    assert page.count("<math") == 2  # the loss and dL/dw of the single neuron
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must not fetch anything"


def test_report_escapes_names_and_the_code_reads_back_exactly():
    g = gc.Graph("<script>alert(1)</script>")
    x = g.input("x<b>", shape=())
    w = g.param("w&'\"", shape=())
    g.output("loss</pre>", (w * x - 1) ** 2)
    prog = gc.compile(g)
    page = report_html(prog, feeds={"x<b>": 2.0, "w&'\"": 0.5})
    assert "<script>" not in page and "x<b>" not in page and "</pre>\"" not in page
    for source in (prog.forward_source, prog.backward_source):
        assert html.unescape(re.sub(r"<[^>]+>", "", highlight(source))) == source


def test_formulas_match_the_lecture():
    from graphc.render.formulas import gradient_formulas

    g, feeds = gc.zoo.relu_neuron(w=1.5)
    formulas = dict(gradient_formulas(gc.compile(g).stages["expanded"]))
    subs = {"x": 3.0, "y": 6.0, "w": 1.5}
    dw = formulas["w"].subs({k: v for k, v in ((s, subs[s.name]) for s in formulas["w"].free_symbols)})
    assert float(dw) == 2 * (4.5 - 6.0) * 3.0  # x * dReLU/dz * 2 (g - y), by hand


# -- in a real browser ---------------------------------------------------------------------

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    found = _chromium()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("headless Chromium is missing and cannot be installed here (needs root and apt-get): "
                    "apt-get install chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "chromium"]):
        try:
            done = subprocess.run(command, capture_output=True, env=env, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            pytest.skip("installing Chromium took over 10 minutes")
        if command[1] == "install" and done.returncode == 0:
            break
    found = _chromium()
    if not found:
        pytest.skip(f"could not install Chromium from the Debian packages: {done.stderr.decode()[-300:]}")
    return found


def _browser(chromium: str, tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", *extra, page.as_uri()],
        capture_output=True, timeout=120, check=False)


def png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows) of an 8-bit RGB/RGBA PNG: a tiny decoder."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows


@needs_dot
def test_report_renders_its_drawings_in_chromium(chromium, neuron_report, tmp_path):
    prog, path, _ = neuron_report
    dom = _browser(chromium, tmp_path, path, "--dump-dom", "--virtual-time-budget=2000")
    assert dom.returncode == 0, dom.stderr.decode()[-500:]
    root_html = dom.stdout.decode("utf-8")
    assert root_html.count("<svg") == len(prog.stages)  # every drawing parsed as inline SVG
    for svg in re.findall(r"<svg.*?</svg>", root_html, flags=re.S):
        assert 'class="node' in svg  # a drawing with nodes, not an empty frame
    shot = tmp_path / "shot.png"
    done = _browser(chromium, tmp_path, path, f"--screenshot={shot}", "--window-size=1000,1400",
                    "--hide-scrollbars")
    assert done.returncode == 0 and shot.exists(), done.stderr.decode()[-500:]
    width, height, bpp, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 1400)
    coloured = {tuple(row[i:i + 3]) for row in rows[::4] for i in range(0, width * bpp, 4 * bpp)}
    dark = sum(1 for row in rows[::2] for i in range(0, width * bpp, 2 * bpp) if sum(row[i:i + 3]) < 200)
    assert len(coloured) > 20, "the page looks blank"
    # the drawings' fills (input blue, param green/grey, output yellow) are on screen
    assert any(abs(r - 0xdb) < 8 and abs(g - 0xea) < 8 and abs(b - 0xfe) < 8 for r, g, b in coloured)
    assert any(abs(r - 0xfe) < 8 and abs(g - 0xf9) < 8 and abs(b - 0xc3) < 8 for r, g, b in coloured)
    assert dark > 500  # text


def test_png_decoder_reads_a_known_image():
    # a 2x1 RGB image (red, blue), written with the Up filter by hand
    raw = b"\x02" + bytes([255, 0, 0, 0, 0, 255])
    ihdr = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    assert png_pixels(data) == (2, 1, 3, [bytes([255, 0, 0, 0, 0, 255])])


@needs_dot
def test_the_report_is_valid_xml_inside_each_drawing(neuron_report):
    _, _, page = neuron_report
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ET.fromstring(svg)


def test_the_report_links_the_explorer_and_says_what_its_values_are(tmp_path):
    from graphc.report import write_report

    g, feeds = gc.zoo.relu_neuron(w=-1.0)
    prog = gc.compile(g)
    explorer = prog.explore(tmp_path / "explore.html", feeds=feeds, train=2, lr=0.01)
    page = write_report(prog, tmp_path / "report.html", feeds, explorer, "the params after 3 epochs").read_text()
    assert '<a href="explore.html">Open the explorer</a>' in page
    assert "Values and gradients drawn for the params after 3 epochs." in page
    plain = report_html(prog)
    assert "No feeds were given" in plain and "prog.explore(" in plain
    # drawings keep their own size in a scrolling frame: a squeezed drawing cannot be read
    assert not re.search(r"\.drawing svg \{[^}]*max-width: 100%", page)
    assert page.count("<details") == len(prog.stages) and page.count("<details class=\"stage\" open>") == 1


def test_a_tensor_graph_shows_its_kernels_formulas():
    g, _ = gc.zoo.two_moons()
    page = report_html(gc.compile(g))
    section = page[page.index('<section id="math">'):]
    assert section.count("<math") >= 5 and "tanh" in section


@needs_dot
def test_a_big_program_draws_its_first_and_last_stage_and_takes_a_given_check(tmp_path):
    from graphc.report import DRAW_EVERY_STAGE_BELOW

    g, feeds = gc.zoo.deep_sigmoid(depth=30, width=2)
    prog = gc.compile(g)
    assert max(s.number_of_nodes() for s in prog.stages.values()) >= DRAW_EVERY_STAGE_BELOW
    check = gc.check_gradients(prog, feeds, raise_on_failure=False)
    page = report_html(prog, feeds, check=check)
    assert page.count("<svg") == 2 and page.count("(drawn in the explorer)") == len(prog.stages) - 2
    assert re.findall(r'<figure id="stage-([^"]+)"', page) == list(prog.stages)
    assert f"{len(check.rows)} checks" in page
