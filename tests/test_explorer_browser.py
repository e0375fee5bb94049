"""The explorer in a real browser: Debian's Chromium driven by Playwright, from file://.

Every page is loaded with all requests routed through a recorder: anything but file://
and data: is aborted and fails the test (the page must not reach the network). Pictures
are compared by structure (the DOM, and pixels that must differ), never byte for byte.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pytest

import graphc as gc

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")
if not Path(CHROMIUM).exists():
    pytest.skip("no Chromium: scripts/setup.sh installs it (apt-get install chromium) when run as root",
                allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page opened from a file, with every request recorded and outside ones refused."""

    def __init__(self, browser, path: Path, width: int = 1400, height: int = 1000):
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.resolve().as_uri())

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            route.abort()

    def root(self, attr: str) -> str:
        return self.page.evaluate(f"document.documentElement.getAttribute({attr!r})")

    def close(self):
        outside = [u for u in self.requests if not u.startswith(("file://", "data:"))]
        assert not outside, f"the page asked the network for {outside}"
        assert not self.errors, self.errors
        self.context.close()


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    g, feeds = gc.zoo.two_moons()
    prog = gc.compile(g)
    path = prog.explore(tmp_path_factory.mktemp("explore") / "moons.html", feeds=feeds, train=20, lr=0.5)
    return prog, feeds, path


DIFF_JS = """async ([a, b]) => {
  const load = src => new Promise((ok, fail) => {
    const i = new Image(); i.onload = () => ok(i); i.onerror = fail; i.src = src;
  });
  const [x, y] = [await load(a), await load(b)];
  const read = img => {
    const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
    const g = c.getContext("2d"); g.drawImage(img, 0, 0); return g.getImageData(0, 0, img.width, img.height).data;
  };
  const [p, q] = [read(x), read(y)];
  let differ = 0; const colours = new Set();
  for (let i = 0; i < p.length; i += 4) {
    if (Math.abs(p[i] - q[i]) + Math.abs(p[i + 1] - q[i + 1]) + Math.abs(p[i + 2] - q[i + 2]) > 30) differ++;
    if (i % 28 === 0) colours.add((q[i] << 16) | (q[i + 1] << 8) | q[i + 2]);
  }
  const same = x.width === y.width && x.height === y.height;
  return {same_size: same, differ: differ / (p.length / 4), colours: colours.size};
}"""


def compare(page, before: bytes, after: bytes) -> dict:
    """Share of pixels that differ between two PNG screenshots, and the colours of the second,
    decoded by the browser itself (data: URLs, no file leaves the machine)."""
    urls = ["data:image/png;base64," + base64.b64encode(png).decode("ascii") for png in (before, after)]
    return page.evaluate(DIFF_JS, urls)


def test_stepping_through_every_stage(browser, moons):
    prog, _, path = moons
    view = Page(browser, path)
    page, names = view.page, list(prog.stages)
    assert view.root("data-stage") == names[0] and view.root("data-step") == "0"
    for k, name in enumerate(names):
        page.get_by_test_id("stage-slider").fill(str(k))
        assert view.root("data-stage") == name
        drawn = page.eval_on_selector_all("[data-node]", "els => els.map(e => e.getAttribute('data-node'))")
        assert sorted(drawn) == sorted(prog.stages[name].nodes)  # every node of the stage, nothing else
    page.get_by_test_id("stage-slider").fill("0")
    page.keyboard.press("ArrowRight")
    assert view.root("data-stage") == names[1]
    # what differentiation added, counted against the stage graphs themselves
    k = names.index("differentiated")
    page.get_by_test_id("stage-slider").fill(str(k))
    new = set(prog.stages["differentiated"].nodes) - set(prog.stages[names[k - 1]].nodes)
    assert f"+{len(new)} new" in page.locator("#stage-changes").inner_text()
    assert page.locator(".node.added").count() == len(new)
    view.close()


def test_clicking_a_node_shows_its_op_formula_code_value_and_gradient(browser, moons):
    prog, feeds, path = moons
    view = Page(browser, path)
    page = view.page
    page.get_by_test_id("stage-slider").fill(str(list(prog.stages).index("optimized")))
    page.locator('[data-node="a1"]').click()
    panel = page.get_by_test_id("node-panel")
    text = panel.inner_text()
    assert "op tanh" in text and "N×16" in text
    assert panel.locator("math").count() == 1 and "tanh" in panel.locator("math").text_content()
    assert "'a1'" in text  # its generated lines, as the lowering commented them
    # the value shown against numpy by hand: a1 = tanh(x W1 + b1)
    a1 = np.tanh(feeds["x"] @ feeds["W1"] + feeds["b1"])
    assert f"mean {float(f'{a1.mean():.4g}')}" in text or f"mean {a1.mean():.3e}" in text
    assert "gradient ∂loss/∂a1" in text
    # a ReLU node shows its kink convention
    blobs_graph, blobs_feeds = gc.zoo.blobs()
    other = gc.compile(blobs_graph).explore(path.with_name("blobs.html"), feeds=blobs_feeds)
    second = Page(browser, other)
    second.page.locator('[data-node="a1"]').click()
    assert "dReLU/dz = 0 if z < 0" in second.page.get_by_test_id("node-panel").inner_text()
    second.close()
    view.close()


def bce(p, y):
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def test_playing_twenty_steps_draws_the_loss_curve_and_moves_the_boundary(browser, moons):
    prog, feeds, path = moons
    view = Page(browser, path)
    page = view.page
    assert page.get_by_test_id("loss-point").count() == 1
    before = page.get_by_test_id("boundary").screenshot()
    page.get_by_test_id("play").click()
    page.wait_for_function("document.documentElement.getAttribute('data-step') === '20'", timeout=15000)
    assert page.get_by_test_id("loss-point").count() == 21
    moved = compare(page, before, page.get_by_test_id("boundary").screenshot())
    assert moved["same_size"] and moved["differ"] > 0.05, "the decision boundary did not move"
    # the first loss drawn is the two-moons NLL at the initial params, by hand in numpy
    h = np.tanh(np.tanh(feeds["x"] @ feeds["W1"] + feeds["b1"]) @ feeds["W2"] + feeds["b2"])
    p = 1 / (1 + np.exp(-(h @ feeds["W3"] + feeds["b3"])))
    first = page.get_by_test_id("loss-point").first.locator("title").text_content()
    assert first.startswith("step 0: loss ") and abs(float(first.split()[-1]) - bce(p, feeds["y"])) < 1e-3
    last = page.get_by_test_id("loss-point").last.locator("title").text_content()
    assert float(last.split()[-1]) < float(first.split()[-1])  # SGD lowered the loss
    view.close()


def test_a_two_thousand_node_joint_graph_opens_summarized_zooms_and_expands(browser, tmp_path):
    g, _ = gc.zoo.deep_sigmoid(depth=182)
    prog = gc.compile(g)
    joint = prog.stages["differentiated"]
    assert joint.number_of_nodes() >= 2000
    view = Page(browser, prog.explore(tmp_path / "deep.html"))
    page = view.page
    page.get_by_test_id("stage-slider").fill(str(list(prog.stages).index("differentiated")))
    drawn = page.locator("[data-node]").count()
    summaries = page.locator("[data-nodes]")
    held = sum(len(s.split()) for s in summaries.evaluate_all("els => els.map(e => e.getAttribute('data-nodes'))"))
    assert summaries.count() >= 2 and drawn < 600 and drawn + held == joint.number_of_nodes()
    graph = page.get_by_test_id("graph")
    box = graph.bounding_box()
    zoom_before = float(graph.get_attribute("data-zoom"))
    page.mouse.move(box["x"] + 40, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -400)
    assert float(graph.get_attribute("data-zoom")) > 4 * zoom_before
    first = summaries.first
    members = first.get_attribute("data-nodes").split()
    page.keyboard.press("0")  # fit the whole graph again, then open one summary
    first.click()
    assert page.locator("[data-node]").count() == drawn + len(members)
    assert page.locator(f'[data-node="{members[0]}"]').count() == 1
    view.close()


def test_stages_look_different_and_the_page_is_not_blank(browser, moons):
    prog, _, path = moons
    view = Page(browser, path)
    page = view.page
    first = page.get_by_test_id("graph").screenshot()
    page.get_by_test_id("stage-slider").fill(str(list(prog.stages).index("differentiated")))
    result = compare(page, first, page.get_by_test_id("graph").screenshot())
    assert result["same_size"] and result["differ"] > 0.005
    assert result["colours"] > 20, "the graph looks blank"
    view.close()


def test_graphc_explore_two_moons_plays_in_the_browser(browser, tmp_path, capsys):
    from graphc import cli

    out = tmp_path / "moons.html"
    assert cli.main(["explore", "two_moons", "--out", str(out), "--steps", "20", "--lr", "0.5"]) == 0
    capsys.readouterr()
    view = Page(browser, out)
    page = view.page
    assert view.root("data-step") == "0" and view.root("data-stage") == "declared"
    for testid in ("stage-slider", "graph", "node-panel", "loss-curve", "boundary", "play"):
        assert page.get_by_test_id(testid).count() == 1, testid
    page.keyboard.press(" ")  # space plays
    page.wait_for_function("document.documentElement.getAttribute('data-step') === '20'", timeout=15000)
    assert page.get_by_test_id("loss-point").count() == 21
    page.locator('[data-node="W1"]').click()
    text = page.get_by_test_id("node-panel").inner_text()
    assert "W1" in text and "value at SGD step 20" in text  # a param's panel follows the training
    view.close()


def test_hostile_names_draw_as_text_and_open_their_panel(browser, tmp_path):
    g = gc.Graph("<script>alert(1)</script>")
    x = g.input('x"] <b>', shape=("N", 1))
    w = g.param("w'); alert(2); //", shape=(1, 1))
    g.output("loss", gc.mse(gc.relu(x @ w), x))
    prog = gc.compile(g)
    feeds = {'x"] <b>': np.array([[3.0]]), "w'); alert(2); //": np.array([[1.5]])}
    view = Page(browser, prog.explore(tmp_path / "hostile.html", feeds=feeds, train=2, lr=0.01))
    page = view.page
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    node = page.locator("[data-node]").filter(has_text='x"] <b>').first
    assert node.get_attribute("data-node") == 'x"] <b>'
    node.click()
    assert 'x"] <b>' in page.get_by_test_id("node-panel").inner_text()
    assert page.locator("b").filter(has_text="x").count() == 0 and not dialogs
    view.close()
