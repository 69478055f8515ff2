"""The real-browser layer: the app served by ``streamlit run`` on a free localhost port, driven
by Playwright in Debian's chromium. Mandatory in CI (CI=true): there a missing chromium fails;
elsewhere the tests skip with the reason."""

import os

import pytest

from streamlit_browser import CHROMIUM_FLAGS, ROOT, find_chromium, streamlit_server, wait_until_idle


def chromium_path() -> str:
    found = find_chromium()
    if found:
        return found
    reason = "Debian's chromium is not installed (apt-get install -y chromium); the browser tests need it"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI makes them mandatory.")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def server_url():
    chromium_path()  # skip (or fail in CI) before starting anything
    log = ROOT / ".pytest_cache" / "streamlit-browser-tests.log"
    log.parent.mkdir(exist_ok=True)
    with streamlit_server(log) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, server_url):
    """``open_page()``: a fresh browser context on the app. Fails the test on any console error or
    page error."""
    contexts, errors = [], []

    def opener():
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda response: errors.append(f"HTTP {response.status} for {response.url}")
                if response.status >= 400 else None)
        page.goto(server_url)
        wait_until_idle(page)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert not errors, f"browser console errors: {errors}"
