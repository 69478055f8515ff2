"""The Live page's speed in a real browser: opening the app, Step against a floor page, and Play.

    python benchmarks/live_latency.py [--clicks 30] [--visitors 5] [--play-seconds 20] [--envs CartPole-v1 ALE/Pong-v5]

Starts ``streamlit run`` on free localhost ports and drives Debian's chromium with Playwright.

- Opening: a freshly started server, from opening the page to the first explained step on screen
  (the Step metric and the bars drawn); then new visitors on the now warm server (each a new browser
  context, nothing cached) and a returning one (the first visitor's cache). Each is timed twice:
  by Playwright from ``goto`` to finding both (its own round trips included), and by the page
  itself from the navigation's start to their first paint.
- Step: click to charts on Live (CartPole) and on ``benchmarks/floor_page.py``, which draws the same
  things from canned numbers with no model, in the same run. A click counts as done when the "Step"
  metric shows the new step and the script run that redraws every chart has finished.
- Play: the player's log of when each step was displayed (``window.__rlPlayerLog``), over
  ``--play-seconds`` of Play at each rate: the interval between displayed steps (median, 95th
  percentile), the steps skipped (none should be) and the rate reached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from playwright.sync_api import sync_playwright  # noqa: E402

from streamlit_browser import (  # noqa: E402
    CHROMIUM_FLAGS,
    SCRIPT_STATE,
    find_chromium,
    metric_value,
    streamlit_server,
    wait_until_idle,
)

VIEWPORT = {"width": 1400, "height": 1100}


def choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_until_idle(page)


# In the page: when the Step metric and the bars are first both visible (React keeps a suspended
# part of the page in the document, hidden, until all of it can be shown), then painted (the second
# animation frame after that), in milliseconds from the navigation's start.
STEP_PAINTED = """
window.__stepPainted = null;
new MutationObserver((_, observer) => {
    const step = [...document.querySelectorAll('[data-testid="stMetric"]')]
        .some(m => m.textContent.startsWith("Step") && m.checkVisibility());
    if (!step || !document.querySelector(".attribution-bars")?.checkVisibility()) return;
    observer.disconnect();
    requestAnimationFrame(() => requestAnimationFrame(() => { window.__stepPainted = performance.now(); }));
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true,
                      attributeFilter: ["style", "class"]});
"""


def opening(context, url) -> tuple[float, float]:
    """(seconds from ``goto`` to the first explained step on screen as Playwright sees it, seconds from
    the navigation's start to that step painted as the page sees it), in a new page of ``context``
    (a ``visitor``)."""
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector('[data-testid="stMetric"] >> text=Step', timeout=120_000)
    page.wait_for_selector(".attribution-bars", timeout=120_000)
    seconds = time.perf_counter() - started
    painted = page.wait_for_function("() => window.__stepPainted", timeout=10_000).json_value() / 1e3
    page.close()
    return seconds, painted


def visitor(browser):
    """A new browser context, as a new visitor's browser, that times the step's first paint."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(STEP_PAINTED)
    return context


def openings(browser, url, visitors: int) -> dict[str, tuple[float, float]]:
    """Opening times (see ``opening``): the first visitor of a fresh server; the median of ``visitors``
    new visitors (each a new browser context, so nothing cached); the median of ``visitors`` visits
    of one returning visitor (the first visitor's context, its cache warm)."""
    first_visitor = visitor(browser)
    found = {"fresh server": opening(first_visitor, url)}
    new = []
    for _ in range(visitors):
        context = visitor(browser)
        new.append(opening(context, url))
        context.close()
    returning = [opening(first_visitor, url) for _ in range(visitors)]
    first_visitor.close()
    for name, visits in (("new visitor", new), ("returning visitor", returning)):
        found[name] = (statistics.median(w for w, _ in visits), statistics.median(p for _, p in visits))
    return found


def click_latencies(page, clicks: int) -> list[float]:
    """Milliseconds from a click on Step to the new step drawn and its script run finished, after 3 warm-ups."""
    step = page.get_by_role("button", name="Step", exact=True)
    for _ in range(3):  # warm-up: first compilations
        step.click()
        wait_until_idle(page)
    latencies = []
    for _ in range(clicks):
        expected = str(int(metric_value(page, "Step")) + 1)
        started = time.perf_counter()
        step.click()
        page.wait_for_function(
            """([expected, state]) => {
                 const value = [...document.querySelectorAll('[data-testid="stMetric"]')]
                   .find(m => m.innerText.startsWith('Step'))
                   ?.querySelector('[data-testid="stMetricValue"]')?.innerText;
                 return value === expected && eval(state)() !== 'running'; }""",
            arg=[expected, SCRIPT_STATE],
            timeout=60_000,
            polling="raf",
        )
        latencies.append((time.perf_counter() - started) * 1e3)
    return latencies


def play(page, rate: str, seconds: float) -> dict:
    """Play ``seconds`` at ``rate`` from Reset; what the player's display log says."""
    page.get_by_role("button", name="Reset", exact=True).click()
    wait_until_idle(page)
    choose(page, "Speed", rate)
    page.evaluate("() => { window.__rlPlayerLog = []; }")
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_timeout(seconds * 1e3)
    log = page.evaluate("() => window.__rlPlayerLog")
    pause = page.get_by_role("button", name="Pause", exact=True)
    if pause.count():
        pause.click()
    page.get_by_role("button", name="Play", exact=True).wait_for(timeout=60_000)
    wait_until_idle(page)
    steps, times = [t for t, _ in log], [ms for _, ms in log]
    intervals = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    return {"shown": len(steps), "skipped": sum(b - a - 1 for a, b in zip(steps, steps[1:], strict=False)),
            "median": statistics.median(intervals), "p95": intervals[int(0.95 * (len(intervals) - 1))],
            "max": intervals[-1],
            "rate": 1e3 * (len(times) - 1) / (times[-1] - times[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--visitors", type=int, default=5, help="visits measured per kind of visitor")
    parser.add_argument("--play-seconds", type=float, default=20)
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "ALE/Pong-v5"])
    parser.add_argument("--rates", nargs="+", default=["15 steps/s", "30 steps/s"])
    args = parser.parse_args()
    chromium = find_chromium()
    if not chromium:
        sys.exit("Debian's chromium is needed: apt-get install -y chromium")
    print(f"Live page in headless chromium, {os.cpu_count()} cores")
    with streamlit_server() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        live_openings = openings(browser, url, args.visitors)

        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url)
        wait_until_idle(page)
        live = click_latencies(page, args.clicks)
        with streamlit_server(script="benchmarks/floor_page.py") as floor_url:
            floor_openings = openings(browser, floor_url, args.visitors)
            floor_page = browser.new_page(viewport=VIEWPORT)
            floor_page.goto(floor_url)
            wait_until_idle(floor_page)
            floor = click_latencies(floor_page, args.clicks)
            floor_page.close()
        print(f"\nopening, to the first step on screen (new and returning: median of {args.visitors})"
              "\n                          Playwright, from goto      the page, from navigation start")
        for name, found in (("Live, CartPole-v1", live_openings), ("floor page, no model", floor_openings)):
            for visitor, (wall, painted) in found.items():
                print(f"{name:<22}{visitor:<18}{wall:>8.2f} s{painted:>29.2f} s")
        print(f"\nStep, click to charts ({args.clicks} clicks)  median      p90   median / floor")
        for name, found in (("Live, CartPole-v1", live), ("floor page, no model", floor)):
            print(f"{name:<36}{statistics.median(found):>5.0f} ms{sorted(found)[int(0.9 * len(found)) - 1]:>6.0f} ms"
                  f"{statistics.median(found) / statistics.median(floor):>16.2f}")

        print(f"\nPlay, {args.play_seconds:.0f} s each          shown  skipped  interval median      p95      max"
              "   steps/s")
        for env_id in args.envs:
            if env_id != "CartPole-v1":
                choose(page, "Environment", env_id)
            for rate in args.rates:
                found = play(page, rate, args.play_seconds)
                print(f"{env_id:<16}{rate:>12}{found['shown']:>8}{found['skipped']:>9}{found['median']:>14.1f} ms"
                      f"{found['p95']:>6.0f} ms{found['max']:>6.0f} ms{found['rate']:>10.1f}", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
