"""Uploads in a real browser: a file over the configured limit is refused with a message, before it
is sent, and the session goes on."""

import pytest

from streamlit_browser import metric_value, wait_until_idle

pytestmark = pytest.mark.browser


def test_a_file_over_the_upload_limit_is_refused(open_page, tmp_path):
    big = tmp_path / "huge.keras"
    with open(big, "wb") as file:
        file.truncate(51 * 2**20)  # just over the 50 MB of .streamlit/config.toml
    page = open_page()
    page.get_by_text("Your own policy").click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(big))
    page.get_by_text("File must be 50.0MB or smaller").wait_for(timeout=10_000)
    page.get_by_role("button", name="Step", exact=True).click()
    wait_until_idle(page)
    assert metric_value(page, "Step") == "1"
    assert page.locator('[data-testid="stException"]').count() == 0
