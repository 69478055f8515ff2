"""The app in a real browser: it opens, draws its chart and answers a change without errors."""

import pytest

from streamlit_browser import wait_until_idle

pytestmark = pytest.mark.browser


@pytest.fixture
def page(open_page):
    page = open_page()
    page.get_by_role("link", name="How IG works").click()  # as a user does (a direct URL 404s on two probes)
    wait_until_idle(page)
    return page


def test_opens_on_the_papers_example_with_a_chart_and_no_exception(page):
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "How Integrated Gradients works" in page.locator("h1").first.inner_text()
    bars = page.locator(".js-plotly-plot .bars .point")
    assert bars.count() == 2
    assert "gap 0.0%" in page.locator('[data-testid="stAlert"]').first.inner_text()


def test_changing_the_steps_recomputes(page):
    refine = page.get_by_role("switch", name="Refine")
    page.locator('[data-testid="stCheckbox"]').filter(has_text="Refine").click()  # off: exactly the steps asked for
    wait_until_idle(page)
    assert not refine.is_checked()
    page.get_by_label("Steps", exact=True).and_(page.locator("input")).fill("3")
    page.get_by_label("Steps", exact=True).and_(page.locator("input")).press("Enter")
    wait_until_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    # Three Gauss-Legendre points (alpha = 0.11, 0.5, 0.89, weights 5/18, 8/18, 5/18) see the
    # gradient of f only at 0.89, past the kink at 0.5: IG = 5/18 * (3, -1), sum 0.56 of the change 1.
    text = page.locator('[data-testid="stAlert"]').first.inner_text()
    assert text == "attributions sum to +0.56; f rose from 0.00 at the baseline to 1.00: gap 44.4%"
