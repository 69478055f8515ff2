"""Live page speed in a real browser: click on "Step" to updated charts, and Play's steps per second.

    python benchmarks/live_latency.py [--clicks 30] [--play-seconds 10]

Starts ``streamlit run app.py`` on a free localhost port and drives Debian's chromium with
Playwright. A click counts as done when the "Step" metric shows the new step and the script run
(env step, attribution, every chart) has finished. Play runs at its fastest setting (10 steps/s).
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


def choose_environment(page, env_id: str) -> None:
    page.get_by_role("combobox", name="Environment").click()
    page.get_by_role("option", name=env_id, exact=True).click()
    wait_until_idle(page)


def measure(page, env_id: str, clicks: int, play_seconds: float) -> dict:
    choose_environment(page, env_id)
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
    page.get_by_role("combobox", name="Speed").click()
    page.get_by_role("option", name="10 steps/s").click()
    wait_until_idle(page)
    before = int(metric_value(page, "Step"))
    page.get_by_role("button", name="Play", exact=True).click()
    started = time.perf_counter()
    page.wait_for_timeout(play_seconds * 1e3)
    after, elapsed = int(metric_value(page, "Step")), time.perf_counter() - started
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_until_idle(page)
    return {"median": statistics.median(latencies), "p90": sorted(latencies)[int(0.9 * len(latencies)) - 1],
            "max": max(latencies), "play": (after - before) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--play-seconds", type=float, default=10)
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "LunarLander-v3"])
    args = parser.parse_args()
    chromium = find_chromium()
    if not chromium:
        sys.exit("Debian's chromium is needed: apt-get install -y chromium")
    print(
        f"Live page in headless chromium, {os.cpu_count()} cores, {args.clicks} clicks, "
        f"Play {args.play_seconds:.0f} s at 10 steps/s"
    )
    print(f"{'environment':<16}{'click to charts, median':>25}{'p90':>9}{'max':>9}{'Play steps/s':>15}")
    with streamlit_server() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        for env_id in args.envs:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            wait_until_idle(page)
            found = measure(page, env_id, args.clicks, args.play_seconds)
            print(
                f"{env_id:<16}{found['median']:>22.0f} ms{found['p90']:>6.0f} ms{found['max']:>6.0f} ms"
                f"{found['play']:>15.1f}"
            )
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
