"""Many users at once: eight browser sessions against one server, each with its own environment and
settings, stepping together; no session may ever show another's state.

    python benchmarks/concurrency.py [--steps 200] [--reset-every 50]

Every session's Step (or, every ``--reset-every`` rounds, Reset) goes out before any answer is
awaited, and each answer is checked before the next round. At the end each session must show its
own environment, settings and step count, with no exception and no browser console error.
Prints the wall time per round; the full-size figures are in RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from streamlit_browser import metric_value, wait_until_idle  # noqa: E402

SESSIONS = [  # environment, then sidebar choices (combobox label -> option)
    ("CartPole-v1", {}),
    ("LunarLander-v3", {}),
    ("Acrobot-v1", {"Method": "trapezoid"}),
    ("MountainCar-v0", {"Explain": "logit"}),
    ("Pendulum-v1", {}),
    ("CartPole-v1", {"Baseline": "mean of reference states"}),
    ("LunarLander-v3", {"Explain": "critic value"}),
    ("Acrobot-v1", {"Explain": "log-probability"}),
]


def choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_until_idle(page)


def wait_for_step(page, expected: int) -> None:
    page.wait_for_function(
        """(expected) => [...document.querySelectorAll('[data-testid="stMetric"]')]
             .find(m => m.innerText.startsWith('Step'))?.querySelector('[data-testid="stMetricValue"]')
             ?.innerText === String(expected)""", arg=expected, timeout=120_000)


def step_together(open_page, steps: int, reset_every: int) -> float:
    """Open one page per session with ``open_page()``, step them all ``steps`` rounds, check that none
    crossed another; returns the seconds the rounds took. Raises AssertionError on any crossing."""
    pages = []
    for env_id, choices in SESSIONS:
        page = open_page()
        choose(page, "Environment", env_id)
        for label, option in choices.items():
            choose(page, label, option)
        pages.append(page)
    counts, started = [0] * len(pages), time.perf_counter()
    for round_ in range(1, steps + 1):
        reset = round_ % reset_every == 0
        for page in pages:  # every session's click goes out before any answer is awaited
            page.get_by_role("button", name="Reset" if reset else "Step", exact=True).click()
        for i, page in enumerate(pages):
            counts[i] = 0 if reset else counts[i] + 1
            wait_for_step(page, counts[i])
    seconds = time.perf_counter() - started
    for page, count, (env_id, choices) in zip(pages, counts, SESSIONS, strict=True):
        wait_until_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        caption = page.locator('[data-testid="stCaptionContainer"]').first.inner_text()
        assert caption.startswith(f"{env_id} · policy: shipped"), caption  # its own environment, nobody else's
        for label, option in choices.items():
            assert page.get_by_role("combobox", name=label).input_value() == option
        assert metric_value(page, "Step") == str(count)
    return seconds


def main() -> None:
    from playwright.sync_api import sync_playwright

    from streamlit_browser import CHROMIUM_FLAGS, find_chromium, streamlit_server

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--reset-every", type=int, default=50)
    args = parser.parse_args()
    errors = []
    with streamlit_server() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS)

        def open_page():
            page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto(url)
            wait_until_idle(page)
            return page

        seconds = step_together(open_page, args.steps, args.reset_every)
        browser.close()
    if errors:
        raise SystemExit(f"browser console errors: {errors[:5]}")
    rounds = args.steps
    print(f"{'sessions':>9}{'steps each':>12}{'steps in all':>14}{'wall s':>9}{'ms per round':>14}")
    print(f"{len(SESSIONS):>9}{rounds:>12}{rounds * len(SESSIONS):>14,}{seconds:>9.0f}{1e3 * seconds / rounds:>14.0f}")


if __name__ == "__main__":
    main()
