"""The sidebar's settings follow the user through every page, in a real browser (each page draws the
sidebar, and Streamlit would otherwise reset a widget that another page drew), also after a step of
the live fragment."""

import pytest

from streamlit_browser import wait_until_idle

pytestmark = pytest.mark.browser


def choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_until_idle(page)


def test_settings_survive_every_page_change(open_page):
    page = open_page()
    choose(page, "Environment", "Acrobot-v1")
    choose(page, "Method", "trapezoid")
    steps = page.get_by_role("spinbutton", name="Steps")
    steps.fill("32")
    steps.press("Enter")
    wait_until_idle(page)
    # A step runs only the live fragment; the next page switch once came back with every setting at
    # its default.
    page.get_by_role("button", name="Step", exact=True).click()
    wait_until_idle(page)
    for name in ("Replay", "Trust", "How IG works", "Live"):
        page.get_by_role("link", name=name).click()
        wait_until_idle(page)
        if name == "How IG works":
            continue  # no sidebar settings here; they must still be there on the next page
        assert page.get_by_role("combobox", name="Environment").input_value() == "Acrobot-v1", name
        assert page.get_by_role("combobox", name="Method").input_value() == "trapezoid", name
        assert page.get_by_role("spinbutton", name="Steps").input_value() == "32", name
    assert page.locator('[data-testid="stCaptionContainer"]').first.inner_text().startswith("Acrobot-v1")
    assert page.locator('[data-testid="stException"]').count() == 0
