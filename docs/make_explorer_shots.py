"""Screenshots of the explorer for docs/images/ (needs Chromium and Playwright).

    python3 docs/make_explorer_shots.py

Each page is written by graphc itself (prog.explore) and photographed in headless
Chromium at 100 % (1400 CSS px wide): the lecture's pictures as the explorer draws them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import graphc as gc  # noqa: E402

OUT = HERE / "images"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def shoot(browser, page_path: Path, out: str, stage: str | None = None, node: str | None = None,
          steps: int | None = None, part: str | None = None, height: int = 900) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
    page.goto(page_path.as_uri())
    if stage is not None:
        names = page.evaluate("JSON.parse(document.getElementById('graphc-data').textContent).stages.map(s => s.name)")
        page.get_by_test_id("stage-slider").fill(str(names.index(stage)))
    if steps is not None:
        page.get_by_test_id("step-slider").fill(str(steps))
    if node is not None:
        page.locator(f'[data-node="{node}"]').click()
    if part:
        page.locator(part).screenshot(path=str(OUT / out))
    else:
        page.screenshot(path=str(OUT / out), full_page=True)
    page.close()
    print("wrote", out)


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp())
    pages = {}
    g, feeds = gc.zoo.two_moons()
    pages["moons"] = gc.compile(g).explore(work / "moons.html", feeds=feeds, train=60, lr=0.5)
    g, feeds = gc.zoo.relu_neuron(w=-1.0)
    pages["dead_relu"] = gc.compile(g).explore(work / "dead_relu.html", feeds=feeds, train=10, lr=0.01)
    g, feeds = gc.zoo.wide_relu(dead_output=True)
    pages["dead_output"] = gc.compile(g).explore(work / "dead_output.html", feeds=feeds, train=10, lr=0.01)
    g, feeds = gc.zoo.residual()
    pages["residual"] = gc.compile(g).explore(work / "residual.html", feeds=feeds, train=10, lr=0.01)
    for name in ("deep_sigmoid", "deep_residual"):
        g, feeds = gc.zoo.get(name)(depth=20)
        pages[name] = gc.compile(g).explore(work / f"{name}.html", feeds=feeds, train=40, lr=0.5)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        shoot(browser, pages["moons"], "explorer_two_moons.png", stage="optimized", node="a1", steps=60, height=760)
        shoot(browser, pages["dead_relu"], "explorer_dead_relu.png", stage="differentiated", node="w")
        shoot(browser, pages["dead_output"], "explorer_dead_output.png", stage="differentiated", node="W1")
        shoot(browser, pages["residual"], "explorer_residual.png", stage="differentiated", node="w1")
        for name in ("deep_sigmoid", "deep_residual"):
            shoot(browser, pages[name], f"explorer_{name}_gradients.png", steps=40, part="#training")
        browser.close()


if __name__ == "__main__":
    main()
