"""The Replay page in a real browser: record, scrub with the keyboard, download the CSV, and check
that its numbers are the ones the page shows."""

import csv
import re

import pytest

from streamlit_browser import metric_value, wait_until_idle

pytestmark = pytest.mark.browser


def test_record_scrub_and_download_the_csv(open_page):
    page = open_page()
    page.get_by_role("link", name="Replay").click()
    page.get_by_role("button", name="Record episode").click()
    page.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
    wait_until_idle(page)
    assert metric_value(page, "Step") == "0"

    page.get_by_role("slider").first.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    wait_until_idle(page)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stMetric]')].some("
                           "m => m.innerText.startsWith('Step') && m.innerText.trim().endsWith('10'))", timeout=10_000)
    assert metric_value(page, "Step") == "10"
    shown = page.locator('[data-testid="stAlert"]').filter(has_text="attributions sum to").first.inner_text()
    shown_sum = float(re.search(r"attributions sum to ([+-][0-9.e+-]+);", shown).group(1))

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    with open(download.value.path(), newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["step"] == "10"]
    assert len(rows) == 4
    assert round(sum(float(row["attribution"]) for row in rows), 2) == pytest.approx(shown_sum, abs=0.005)
    assert page.locator('[data-testid="stException"]').count() == 0
    for label, check in [
        ("Download HTML report", lambda data: data.startswith(b"<!DOCTYPE html>") and b"Plotly.newPlot" in data),
        ("Download MP4", lambda data: data[4:8] == b"ftyp" and len(data) > 10_000),
    ]:
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name=label).click()
        with open(download.value.path(), "rb") as file:
            assert check(file.read()), label
    assert page.locator('[data-testid="stException"]').count() == 0
