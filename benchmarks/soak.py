"""Soak: Play the Live page for thousands of steps in one browser session and watch the server's memory.

    python benchmarks/soak.py [--steps 3000] [--env CartPole-v1] [--rate "15 steps/s"]

Plays at ``--rate`` (the Live page's default), pressing Reset and Play again whenever an episode
ends, and reads the server process's resident memory (VmRSS) and the page's JavaScript heap every
250 steps. The figure that matters is the growth after the first 500 steps (issue 7: under 100 MB
over 3,000 steps; run Pong for 5,000 to see a second game reuse the first one's memory).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from playwright.sync_api import sync_playwright  # noqa: E402

from streamlit_browser import CHROMIUM_FLAGS, find_chromium, metric_value, streamlit_server, wait_until_idle  # noqa: E402

STALL_SECONDS = 60  # Play that shows no new step for this long is a failure, not a wait


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def soak(browser, url, steps: int, env_id: str, rate: str = "15 steps/s",
         report=print) -> list[tuple[int, float, float, float]]:
    """Play ``steps`` steps in a new page of ``browser`` (Playwright) on the app at ``url`` (a
    ``ServerURL``): (steps played, seconds, server MB, the page's JavaScript heap MB) every 250
    steps, and at the end. (Chromium rounds the heap unless started with --enable-precise-memory-info.)"""
    readings, played, started = [], 0, time.perf_counter()
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        page = context.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        wait_until_idle(page)
        if env_id != "CartPole-v1":
            page.get_by_role("combobox", name="Environment").click()
            page.get_by_role("option", name=env_id, exact=True).click()
            wait_until_idle(page)
        page.get_by_role("combobox", name="Speed").click()
        page.get_by_role("option", name=rate, exact=True).click()
        wait_until_idle(page)
        def reading(played_steps: int) -> tuple[int, float, float, float]:
            heap = page.evaluate("() => performance.memory.usedJSHeapSize") / 2**20
            return played_steps, time.perf_counter() - started, resident_mb(url.pid), heap

        readings.append(reading(0))
        episode_start = 0
        while played < steps:
            page.get_by_role("button", name="Play", exact=True).click()
            page.get_by_role("button", name="Pause", exact=True).wait_for(timeout=30_000)
            now, last_progress = played, time.perf_counter()
            while True:
                page.wait_for_timeout(1000)
                seen = episode_start + int(metric_value(page, "Step"))
                if seen > now:
                    now, last_progress = seen, time.perf_counter()
                elif time.perf_counter() - last_progress > STALL_SECONDS:
                    raise RuntimeError(f"Play stalled at step {now}: no new step for {STALL_SECONDS} s")
                while readings[-1][0] + 250 <= now:
                    readings.append(reading(readings[-1][0] + 250))
                    report(*readings[-1])
                if now >= steps or page.get_by_role("button", name="Play", exact=True).count():
                    break  # enough, or the episode ended and Play is offered again
            pause = page.get_by_role("button", name="Pause", exact=True)
            if now >= steps and pause.count():  # stopped mid-episode (an episode may end on the very step)
                pause.click()
            wait_until_idle(page)
            played = now
            episode_start = now
            page.get_by_role("button", name="Reset", exact=True).click()
            wait_until_idle(page)
        if readings[-1][0] < played:
            readings.append(reading(played))
            report(*readings[-1])
        if errors:
            raise RuntimeError(f"browser console errors: {errors[:5]}")
    finally:
        context.close()
    return readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--rate", default="15 steps/s")
    args = parser.parse_args()
    print(f"{'steps':>7}{'seconds':>9}{'server MB':>11}{'page heap MB':>14}")
    with streamlit_server() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(),
                                             args=[*CHROMIUM_FLAGS, "--enable-precise-memory-info"])
        readings = soak(browser, url, args.steps, args.env, args.rate,
                        report=lambda s, t, mb, heap: print(f"{s:>7}{t:>9.0f}{mb:>11.1f}{heap:>14.1f}", flush=True))
        browser.close()
    at_500 = next(reading for reading in readings if reading[0] >= 500)
    print(f"growth after step 500: server {readings[-1][2] - at_500[2]:+.1f} MB, page heap "
          f"{readings[-1][3] - at_500[3]:+.1f} MB over {readings[-1][0] - 500} steps")


if __name__ == "__main__":
    main()
