"""The Live page in a real browser: step a CartPole episode, read the bars, play, no errors."""

import pytest

from streamlit_browser import bar_labels, metric_value, wait_until_idle

pytestmark = pytest.mark.browser

CARTPOLE_FEATURES = {"cart position (m)", "cart velocity (m/s)", "pole angle (rad)", "pole angular velocity (rad/s)"}


def no_exception(page):
    return page.locator('[data-testid="stException"]').count() == 0


def test_step_twenty_times_then_play(open_page):
    page = open_page()
    page.wait_for_selector(".attribution-bars", timeout=60_000)
    assert "Why did the agent do that?" in page.locator("h1").first.inner_text()
    step = page.get_by_role("button", name="Step", exact=True)
    for expected in range(1, 21):
        step.click()
        wait_until_idle(page)
        assert metric_value(page, "Step") == str(expected)
    assert no_exception(page)

    assert bar_labels(page) == CARTPOLE_FEATURES
    assert "attributions sum to" in page.locator('[data-testid="stAlert"]').filter(has_text="gap").first.inner_text()
    assert page.locator('[data-testid="stAlert"]').filter(has_text="The agent chose PUSH").count() == 1

    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_timeout(3_000)
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_until_idle(page)
    assert int(metric_value(page, "Step")) > 21  # it played on by itself
    assert no_exception(page)


def test_play_shows_every_step_in_turn_and_pause_stops_at_the_step_on_screen(open_page):
    page = open_page()
    page.wait_for_selector(".attribution-bars", timeout=60_000)
    page.get_by_role("button", name="Play", exact=True).click()
    pause = page.get_by_role("button", name="Pause", exact=True)  # the player's own
    pause.wait_for(timeout=30_000)
    page.wait_for_function("() => (window.__rlPlayerLog || []).length >= 40", timeout=60_000)
    shown = pause.evaluate("""button => {  // read the step on screen and pause in the same instant
        const step = button.getRootNode().querySelector('[data-testid="stMetricValue"]').textContent;
        button.click();
        return Number(step); }""")
    page.get_by_role("button", name="Play", exact=True).wait_for(timeout=30_000)
    wait_until_idle(page)
    assert metric_value(page, "Step") == str(shown)  # the page stopped at the step on screen
    displayed = [t for t, _ in page.evaluate("() => window.__rlPlayerLog")]
    assert displayed == list(range(displayed[0], shown + 1))  # every step shown, in turn, none skipped
    page.get_by_role("button", name="Step", exact=True).click()
    wait_until_idle(page)
    assert metric_value(page, "Step") == str(shown + 1)  # and Step continues from it
    assert no_exception(page)


def test_clicking_the_time_chart_shows_that_steps_bars(open_page):
    page = open_page()
    page.wait_for_selector(".attribution-bars", timeout=60_000)
    for _ in range(8):
        page.get_by_role("button", name="Step", exact=True).click()
        wait_until_idle(page)
    timeline = page.locator('[data-testid="stPlotlyChart"]').first
    bar = timeline.locator(".barlayer .point path").nth(5).bounding_box()  # the reward bar of step 5
    page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)  # through plotly's drag layer
    wait_until_idle(page)
    chosen = page.locator(".attribution-bars .bars-title").filter(has_text="step ")
    chosen.first.wait_for(timeout=10_000)
    assert chosen.first.text_content() == "step 5"
    assert no_exception(page)


def test_reset_while_playing_stops_the_play(open_page):
    page = open_page()
    page.get_by_role("button", name="Play", exact=True).click()
    page.get_by_role("button", name="Pause", exact=True).wait_for(timeout=30_000)
    page.wait_for_timeout(1_500)
    page.get_by_role("button", name="Reset", exact=True).click()
    page.get_by_role("button", name="Play", exact=True).wait_for(timeout=30_000)  # not "Pause" any more
    wait_until_idle(page)
    page.wait_for_timeout(1_500)
    assert metric_value(page, "Step") == "0"  # and it stays at the start
    assert no_exception(page)


def test_a_few_steps_then_open_in_replay(open_page):
    page = open_page()
    page.wait_for_selector(".attribution-bars", timeout=60_000)
    open_in_replay = page.get_by_role("button", name="Open in replay", exact=True)
    assert open_in_replay.is_disabled()  # nothing to study before the first step
    for _ in range(3):
        page.get_by_role("button", name="Step", exact=True).click()
        wait_until_idle(page)
    assert open_in_replay.is_enabled()  # Step reruns only the live view: the button must be in it
    open_in_replay.click()
    wait_until_idle(page)
    page.wait_for_selector("h1:has-text('Replay')", timeout=60_000)
    assert metric_value(page, "Step") == "2"  # the last step taken, ready to study
    assert no_exception(page)
