"""The driving agent in a real browser: Live steps highway-fast-v0 and names the vehicles."""

import pytest

from streamlit_browser import bar_labels, step_in_live

pytestmark = pytest.mark.browser


def test_highway_steps_in_live_with_a_bar_per_vehicle(open_page):
    page = open_page()
    step_in_live(page, "highway-fast-v0", 3)
    assert page.locator('img[alt="the environment"]').count() >= 1
    labels = bar_labels(page)
    assert "ego car" in labels and labels <= {"ego car", "vehicle 1", "vehicle 2", "vehicle 3", "vehicle 4"}
    reading = page.locator('[data-testid="stAlert"]').filter(has_text="The agent chose").first.inner_text()
    assert "mostly because" in reading or "pushed against it" in reading
