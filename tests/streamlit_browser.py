"""Helpers for driving the Streamlit app in a browser."""


def wait_until_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script run that a click or load started has finished."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => { const app = document.querySelector('[data-testid="stApp"]');
                   return app && app.getAttribute('data-test-script-state') !== 'running'; }""",
        timeout=timeout_ms)
    page.wait_for_timeout(100)  # the last delta message lands just after the state flips
