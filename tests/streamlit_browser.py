"""Driving the app in a real browser: start ``streamlit run`` on a free localhost port, find Debian's
chromium, and wait for script runs. Used by tests/browser and benchmarks/live_latency.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic", "--no-first-run"]
SCRIPT_STATE = """() => { const app = document.querySelector('[data-testid="stApp"]');
                          return app ? app.getAttribute('data-test-script-state') : null; }"""


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class ServerURL(str):
    """The app's URL; ``.pid`` is the server process's id (for memory readings)."""
    pid: int


@contextlib.contextmanager
def streamlit_server(log_path: Path | None = None, timeout_s: float = 90, env: dict | None = None,
                     script: str = "app.py"):
    """``streamlit run app.py`` (or ``script``, relative to the repository) on a free port of 127.0.0.1;
    yields its URL (a ``ServerURL``) once /_stcore/health answers. ``env`` adds environment variables
    for the server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = process.pid
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not become healthy on port {port} (exit code {process.poll()})")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        if log_path:
            log.close()


def wait_until_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait for the script run that a click or load started, then for it to finish."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    try:  # the run may start a moment after the event that caused it
        page.wait_for_function(f"() => ({SCRIPT_STATE})() === 'running'", timeout=1_500)
    except PlaywrightTimeout:
        pass  # it already ran, or nothing was to run
    page.wait_for_function(f"() => ({SCRIPT_STATE})() !== 'running'", timeout=timeout_ms)
    page.wait_for_timeout(100)  # the last delta message lands just after the state flips


METRIC_VALUE = """label => {  // the one current metric labelled `label`, looking inside components' shadow roots
    const metrics = [];
    const visit = root => root.querySelectorAll("*").forEach(node => {
        if (node.getAttribute("data-testid") === "stMetric") metrics.push(node);
        if (node.shadowRoot) visit(node.shadowRoot);
    });
    visit(document);
    const stale = node => {  // in an element that the script run under way is about to remove
        for (let n = node; n; n = n.parentNode || n.host) if (n.getAttribute?.("data-stale") === "true") return true;
        return false;
    };
    const found = metrics.filter(m => !stale(m) &&
        m.querySelector('[data-testid="stMetricLabel"]')?.textContent.trim() === label);
    return found.length === 1 ? found[0].querySelector('[data-testid="stMetricValue"]').textContent.trim() : null;
}"""


def metric_value(page, label: str, timeout_ms: int = 30_000) -> str:
    """The value shown by the st.metric labelled ``label`` (or by the Live player, which draws its
    numbers as metrics); waits until exactly one current metric has that label."""
    return page.wait_for_function(METRIC_VALUE, arg=label, timeout=timeout_ms).json_value()


def step_in_live(page, env_id: str, steps: int) -> None:
    """Choose ``env_id`` under Environment and press Step ``steps`` times, checking the Step metric each time."""
    page.get_by_role("combobox", name="Environment").click()
    page.get_by_role("option", name=env_id, exact=True).click()
    wait_until_idle(page)
    step = page.get_by_role("button", name="Step", exact=True)
    for expected in range(1, steps + 1):
        step.click()
        wait_until_idle(page)
        assert metric_value(page, "Step") == str(expected)
    assert page.locator('[data-testid="stException"]').count() == 0


def bar_labels(page) -> set[str]:
    """The labels of the Live page's first bar chart."""
    return set(page.locator(".attribution-bars").first.locator(".bar-name").all_inner_texts())
