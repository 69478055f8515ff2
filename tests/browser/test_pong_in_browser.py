"""Pong, the pixel agent, in a real browser: Live paints the screen and names objects, Replay opens it."""

import pytest

from streamlit_browser import bar_labels, step_in_live, wait_until_idle

pytestmark = pytest.mark.browser

OBJECT_BARS = {"ball", "agent's paddle", "opponent's paddle", "score", "everything else"}


def test_pong_steps_in_live_and_opens_in_replay(open_page):
    page = open_page()
    step_in_live(page, "ALE/Pong-v5", 3)
    assert page.locator('img[alt="the environment"]').count() >= 2  # the painted screen and the frame panels
    # the screen fills its column: Streamlit's markdown draws a picture narrower than its box at its own size
    fit = page.locator('img[alt="the environment"]').first.evaluate("img => getComputedStyle(img).objectFit")
    assert fit == "contain"
    assert bar_labels(page) == OBJECT_BARS
    assert "attributions sum to" in page.locator('[data-testid="stAlert"]').filter(has_text="gap").first.inner_text()

    page.get_by_role("button", name="Open in replay", exact=True).click()
    page.get_by_role("heading", name="Replay").wait_for(timeout=60_000)
    wait_until_idle(page)
    assert "ALE/Pong-v5 · shipped · seed 0 · 3 steps" in page.locator('[data-testid="stCaptionContainer"]').filter(
        has_text="states explained in").first.inner_text()
    assert page.locator('img[alt="the environment"]').count() >= 2
    assert page.locator('[data-testid="stException"]').count() == 0
