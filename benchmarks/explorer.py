"""How the explorer scales: a 2,000-node joint graph against a 200-node one, same run.

    python benchmarks/explorer.py [--repeats 3]

For deep sigmoid stacks of two depths (about 200 and 2,000 nodes in the joint graph) it
times writing the page (prog.explore, no feeds and with 5 training steps) and, in
headless Chromium, loading it, switching to the joint stage, zooming, and expanding every
summarized block. Medians over --repeats runs; the last column is the ratio of the big
graph to the small one. Needs Playwright and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import graphc as gc  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DEPTHS = {"small": 18, "big": 182}


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def browser_times(browser, path: Path, joint: int) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
    out = {"load": timed(lambda: page.goto(path.as_uri()))}
    out["switch to the joint stage"] = timed(lambda: (page.get_by_test_id("stage-slider").fill(str(joint)),
                                                      page.evaluate("document.documentElement.dataset.stage")))
    box = page.get_by_test_id("graph").bounding_box()
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    out["zoom (one wheel step)"] = timed(lambda: (page.mouse.wheel(0, -300), page.evaluate("1")))
    out["expand all"] = timed(lambda: (page.click("#expand-all"), page.evaluate("1")))
    out["drawn nodes"] = page.locator("[data-node]").count()
    page.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp())
    rows: dict[str, dict[str, list[float]]] = {}
    sizes = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for size, depth in DEPTHS.items():
            g, feeds = gc.zoo.deep_sigmoid(depth=depth)
            prog = gc.compile(g)
            sizes[size] = prog.stages["differentiated"].number_of_nodes()
            joint = list(prog.stages).index("differentiated")
            times = rows.setdefault(size, {})
            for _ in range(args.repeats):
                path = work / f"{size}.html"
                times.setdefault("write the page", []).append(timed(lambda: prog.explore(path)))  # noqa: B023
                times.setdefault("write it with 5 SGD steps", []).append(
                    timed(lambda: prog.explore(work / f"{size}-t.html", feeds=feeds, train=5)))  # noqa: B023
                for what, value in browser_times(browser, path, joint).items():
                    times.setdefault(what, []).append(value)
        browser.close()
    print(f"joint graph: small {sizes['small']} nodes, big {sizes['big']} nodes; medians of {args.repeats} runs\n")
    print(f"| {'step':<28} | {'small':>9} | {'big':>9} | big/small |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 11}|-----------|")
    for what in rows["small"]:
        small, big = statistics.median(rows["small"][what]), statistics.median(rows["big"][what])
        unit = "" if what == "drawn nodes" else " s"
        fmt = "{:>9.0f}" if what == "drawn nodes" else "{:>7.3f}{}"
        cells = [fmt.format(v, unit) if unit else fmt.format(v) for v in (small, big)]
        print(f"| {what:<28} | {cells[0]:>9} | {cells[1]:>9} | {big / small:>9.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
