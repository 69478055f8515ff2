"""Helpers for driving the Streamlit app in a browser."""

from playwright.sync_api import TimeoutError as PlaywrightTimeout

SCRIPT_STATE = """() => { const app = document.querySelector('[data-testid="stApp"]');
                          return app ? app.getAttribute('data-test-script-state') : null; }"""


def wait_until_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait for the script run that a click or load started, then for it to finish."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    try:  # the run may start a moment after the event that caused it
        page.wait_for_function(f"() => ({SCRIPT_STATE})() === 'running'", timeout=1_500)
    except PlaywrightTimeout:
        pass  # it already ran, or nothing was to run
    page.wait_for_function(f"() => ({SCRIPT_STATE})() !== 'running'", timeout=timeout_ms)
    page.wait_for_timeout(100)  # the last delta message lands just after the state flips
