"""The app's pages, run headless by Streamlit's AppTest."""

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 60  # TensorFlow's import alone takes seconds


def run_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def button(at, label):
    return next(b for b in at.button if b.label == label)


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def bar_charts(at) -> list[str]:
    """The Live page's bar charts (HTML), in page order."""
    return [m.value for m in at.markdown if 'class="attribution-bars"' in m.value]


def sidebar_select(at, label):
    return next(s for s in at.sidebar.selectbox if s.label == label)


# ---- Live ----

@pytest.fixture
def live():
    return run_app()


def test_opens_on_cartpole_with_a_reading_and_the_completeness_check(live):
    assert live.title[0].value == "Why did the agent do that?"
    assert sidebar_select(live, "Environment").value == "CartPole-v1"
    assert metric(live, "Step") == "0" and metric(live, "Action") in ("push left", "push right")
    assert live.success[0].value.startswith("The agent chose PUSH")
    assert "attributions sum to" in live.info[0].value and "gap" in live.info[0].value
    assert "Attribution on CPU" in " ".join(c.value for c in live.caption)


def test_the_sidebar_settings_follow_the_user_from_page_to_page(live):
    sidebar_select(live, "Environment").set_value("Acrobot-v1").run()
    sidebar_select(live, "Method").set_value("riemann_trapezoid").run()
    next(n for n in live.sidebar.number_input if n.label == "Steps").set_value(32).run()
    for page in ("pages/replay.py", "pages/trust.py", "pages/how_ig_works.py", "pages/live.py"):
        live.switch_page(page).run()
        assert not live.exception, (page, live.exception)
        if page == "pages/how_ig_works.py":
            continue  # it draws no sidebar, and must keep the settings for the next page
        assert sidebar_select(live, "Environment").value == "Acrobot-v1", page
        assert sidebar_select(live, "Method").value == "riemann_trapezoid", page
        assert next(n for n in live.sidebar.number_input if n.label == "Steps").value == 32, page
    assert live.caption[0].value.startswith("Acrobot-v1")


def test_step_and_reset(live):
    for expected in ("1", "2", "3"):
        button(live, "Step").click().run()
        assert not live.exception
        assert metric(live, "Step") == expected
    assert float(metric(live, "Return so far")) == 3.0
    button(live, "Reset").click().run()
    assert metric(live, "Step") == "0"


def test_a_step_keeps_tensorflows_compiled_kernels(live, monkeypatch):
    from tensorflow.python.eager import context

    cleared = []
    monkeypatch.setattr(context.Context, "clear_kernel_cache", lambda self: cleared.append(True))
    button(live, "Step").click().run()
    assert metric(live, "Step") == "1" and not cleared  # Streamlit's clean-up after the run left them


def test_play_explains_seconds_ahead_in_one_batch_and_reset_stops_it(live):
    button(live, "Step").click().run()
    on_screen = live.session_state["live"].shown[2]  # step 1's sums, explained on their own
    button(live, "Play").click().run()
    assert not live.exception
    assert [b.label for b in live.button] == ["Reset", "Step", "Open in replay"]  # Pause is the player's
    assert button(live, "Step").disabled and button(live, "Open in replay").disabled
    played = live.session_state["live"]
    assert [step["t"] for step in played.ahead] == list(range(1, 16))  # 15 steps/s: a second to start with
    assert played.run.t == 16 and played.timeline.shape == (16, 4)
    np.testing.assert_allclose(played.ahead[0]["sums"], on_screen, atol=1e-6)  # in a batch as on its own
    for step in played.ahead:
        np.testing.assert_array_equal(played.timeline[step["t"]], np.float32(step["sums"]))
        assert step["return"] == step["t"] and step["frame"].startswith("data:image/png;base64,")
        assert step["sentence"].startswith("The agent chose PUSH") and "attributions sum to" in step["gap"]
        assert step["bars"].count('class="bar-row"') == 4 and "why P(push " in step["bars"]
    button(live, "Reset").click().run()
    assert metric(live, "Step") == "0" and button(live, "Play") and not live.session_state["live_playing"]


def test_play_caps_refinement_to_keep_its_pace_and_step_does_not(live, monkeypatch):
    import pages.common
    from pages.player import PLAY_MAX_STEPS

    budgets = []
    explain = pages.common.integrated_gradients

    def recording(*args, **kwargs):
        budgets.append((len(args[1]), kwargs.get("max_steps")))
        return explain(*args, **kwargs)

    monkeypatch.setattr(pages.common, "integrated_gradients", recording)
    button(live, "Step").click().run()
    assert budgets == [(1, None)]  # a step shown on its own is refined as far as the engine goes
    button(live, "Play").click().run()
    assert not live.exception and budgets[1:] == [(15, PLAY_MAX_STEPS)]


def test_a_replaced_live_episode_closes_its_environment(live):
    button(live, "Step").click().run()
    first = live.session_state.live.run
    button(live, "Reset").click().run()
    second = live.session_state.live.run
    next(n for n in live.sidebar.number_input if n.label == "Seed").set_value(5).run()  # a new seed: a new episode
    assert first.closed and second.closed and not live.session_state.live.run.closed
    assert metric(live, "Step") == "0"


@pytest.mark.parametrize("env_id", ["LunarLander-v3", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"])
def test_every_shipped_environment_steps_and_reads(live, env_id):
    sidebar_select(live, "Environment").set_value(env_id).run()
    button(live, "Step").click().run()
    button(live, "Step").click().run()
    assert not live.exception
    assert metric(live, "Step") == "2"
    reading = live.success[0].value
    assert reading.startswith("The agent") and any(
        words in reading for words in ("mostly because", "pushed against it", "as sure of it at the baseline"))


@pytest.mark.parametrize("mode", ["logit", "log_probability", "value", "contrast"])
def test_explain_modes(live, mode):
    sidebar_select(live, "Explain").set_value(mode).run()
    button(live, "Step").click().run()
    assert not live.exception
    assert "gap" in live.info[0].value


@pytest.mark.parametrize("baseline", ["mean of reference states", "a reference state", "a custom state"])
def test_baselines(live, baseline):
    sidebar_select(live, "Baseline").set_value(baseline).run()
    button(live, "Step").click().run()
    assert not live.exception
    assert "at the baseline" in live.info[0].value or "stayed at" in live.info[0].value


@pytest.mark.parametrize("text, message", [
    ("1, 2", "needs 4 numbers"),
    ("1, nan, 0, 0", "must be finite numbers"),
    ("a, b, c, d", "must be 4 numbers separated by commas"),
])
def test_a_bad_custom_state_gets_a_message(live, text, message):
    sidebar_select(live, "Baseline").set_value("a custom state").run()
    next(t for t in live.sidebar.text_input if t.label == "Custom state").set_value(text).run()
    assert not live.exception
    assert message in live.error[0].value


def test_contrasting_an_action_with_itself_is_refused(live):
    sidebar_select(live, "Explain").set_value("contrast").run()
    next(s for s in live.sidebar.selectbox if s.label == "A").set_value(0).run()
    next(s for s in live.sidebar.selectbox if s.label == "B").set_value(0).run()
    assert not live.exception
    assert "A and B are the same action" in live.error[0].value


def test_what_if_recomputes_without_touching_the_episode(live):
    button(live, "Step").click().run()
    next(t for t in live.toggle if t.label == "What if the state were different?").set_value(True).run()
    def pole_sliders():
        return [
            next(s for s in live.slider if s.label == label)
            for label in ("pole angle (rad)", "pole angular velocity (rad/s)")
        ]

    for slider in pole_sliders():  # the pole leaning and falling right, as far as the sliders go
        slider.set_value(slider.max)
    live.run()
    assert not live.exception
    assert "the agent would choose **push right**" in " ".join(m.value for m in live.markdown)
    for slider in pole_sliders():
        slider.set_value(slider.min)
    live.run()
    assert "the agent would choose **push left**" in " ".join(m.value for m in live.markdown)
    assert metric(live, "Step") == "1"


def test_an_uploaded_policy_for_another_environment_is_listed_and_explained(live):
    from attribution.rl.policies import POLICY_DIR

    select = sidebar_select(live, "For environment")
    select.set_value("CartPole-v0").run()
    upload = next(u for u in live.get("file_uploader") if u.label == "Upload a policy")
    upload.set_value(
        ("my_policy.keras", (POLICY_DIR / "CartPole-v1.keras").read_bytes(), "application/octet-stream")
    ).run()
    assert not live.exception and not live.sidebar.error
    choice = sidebar_select(live, "Environment")
    assert choice.value.startswith("CartPole-v0 · my_policy.keras") and choice.options[0] == "CartPole-v1"
    assert "CartPole-v0 · policy: my_policy.keras" in live.caption[0].value
    button(live, "Step").click().run()
    assert not live.exception and metric(live, "Step") == "1"
    sidebar_select(live, "Baseline").set_value("mean of reference states").run()  # from the policy's own rollouts
    assert not live.exception and "gap" in live.info[0].value


def test_a_stable_baselines3_upload_says_what_it_found_and_is_explained(live):
    from foreign_on_backend import FOREIGN

    sidebar_select(live, "For environment").set_value("CartPole-v1").run()
    upload = next(u for u in live.get("file_uploader") if u.label == "Upload a policy")
    upload.set_value(("ppo.zip", (FOREIGN / "sb3_ppo_cartpole.zip").read_bytes(), "application/zip")).run()
    assert not live.exception and not live.sidebar.error
    assert sidebar_select(live, "Environment").value.startswith("CartPole-v1 · ppo.zip")
    assert any("Stable-Baselines3 PPO, MlpPolicy 64-64 tanh" in caption.value for caption in live.sidebar.caption)
    button(live, "Step").click().run()
    assert not live.exception and metric(live, "Step") == "1"
    reading = live.success[0].value  # in the environment's own words: "...because the pole leans right (+0.31)"
    assert reading.startswith("The agent") and ("pole" in reading or "cart" in reading)


def test_a_broken_policy_upload_gets_a_message_and_changes_nothing(live):
    choices = sidebar_select(live, "Environment").options
    next(u for u in live.get("file_uploader") if u.label == "Upload a policy").set_value(
        ("broken.keras", b"not a keras archive", "application/octet-stream")
    ).run()
    assert not live.exception
    assert "broken.keras was not loaded" in live.sidebar.error[0].value
    assert (
        sidebar_select(live, "Environment").options == choices
        and sidebar_select(live, "Environment").value == "CartPole-v1"
    )
    button(live, "Step").click().run()
    assert metric(live, "Step") == "1"


def test_bars_for_every_action(live):
    assert len(bar_charts(live)) == 1 and "why P(push " in bar_charts(live)[0]
    next(t for t in live.toggle if t.label == "Bars for every action").set_value(True).run()
    assert not live.exception
    charts = bar_charts(live)
    assert len(charts) == 2 and "P(push left)" in charts[0] and "P(push right)" in charts[1]
    assert all(chart.count('class="bar-row"') == 4 for chart in charts)  # one bar per feature


# ---- How IG works ----

@pytest.fixture
def explainer():
    return run_app("pages/how_ig_works.py")


def test_how_ig_works_shows_the_papers_answer(explainer):
    assert explainer.title[0].value == "How Integrated Gradients works"
    assert explainer.info[0].value == "attributions sum to +1.00; f rose from 0.00 at the baseline to 1.00: gap 0.0%"
    assert "(1.5, −0.5)" in explainer.caption[-1].value


def test_refine_reports_the_points_it_added(explainer):
    explainer.number_input[0].set_value(3).run()
    assert not explainer.exception
    assert explainer.caption[0].value.startswith("Refined from 3 to ")
    explainer.toggle[0].set_value(False).run()
    assert explainer.info[0].value.endswith("gap 44.4%")


def test_moving_a_slider_recomputes(explainer):
    next(s for s in explainer.slider if s.label == "x2").set_value(-1.0).run()
    assert not explainer.exception
    # at (3, -1): ReLU(x2) = 0, so x2 does nothing and x1 carries f = 2 alone
    assert explainer.info[0].value.startswith("attributions sum to +2.00; f rose from 0.00 at the baseline to 2.00")


def test_a_bad_setting_gets_a_message_not_a_crash(explainer):
    next(s for s in explainer.selectbox if s.label == "Method").set_value("riemann_trapezoid")
    explainer.number_input[0].set_value(1).run()
    assert not explainer.exception
    assert "riemann_trapezoid needs steps >= 2" in explainer.error[0].value


# ---- Replay ----

@pytest.fixture
def replay(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTRIBUTION_RUNS", str(tmp_path / "runs"))
    return run_app("pages/replay.py")


def record(at):
    button(at, "Record episode").click().run()
    assert not at.exception, at.exception
    return at


def test_replay_records_explains_and_scrubs(replay):
    assert replay.title[0].value == "Replay"
    record(replay)
    summary = next(c.value for c in replay.caption if "states explained in" in c.value)
    assert summary.startswith("CartPole-v1 · shipped · seed 0 · 500 steps · return 500.0")
    assert metric(replay, "Step") == "0"
    next(s for s in replay.slider if s.label == "Step").set_value(10).run()
    assert metric(replay, "Step") == "10" and "gap" in replay.info[0].value
    button(replay, "▶").click().run()
    assert metric(replay, "Step") == "11"
    mark = next(b for b in replay.button if b.label.startswith("step ") and "most likely action only" in b.label)
    mark.click().run()
    assert metric(replay, "Step") == mark.label.split(":")[0].split()[1]


def test_replay_follows_the_settings(replay):
    record(replay)
    before = replay.info[0].value
    sidebar_select(replay, "Explain").set_value("value").run()
    assert not replay.exception and "V(s)" in replay.info[0].value and replay.info[0].value != before


def test_replay_saves_lists_reopens_and_deletes(replay, tmp_path):
    record(replay)
    button(replay, "Save to library").click().run()
    files = list((tmp_path / "runs").glob("*.npz"))
    assert len(files) == 1
    assert replay.dataframe[0].value["file"].tolist() == [files[0].name]
    button(replay, "Open").click().run()
    assert not replay.exception and metric(replay, "Step") == "0"
    button(replay, "Delete").click().run()
    assert not replay.exception and not list((tmp_path / "runs").glob("*.npz"))


def test_a_damaged_episode_upload_gets_a_message_and_changes_nothing(replay, tmp_path):
    record(replay)
    button(replay, "Save to library").click().run()
    kept = sorted((tmp_path / "runs").iterdir())
    uploader = next(u for u in replay.get("file_uploader") if u.label.startswith("Open an episode file"))
    uploader.set_value(("episode.npz", b"PK\x03\x04 not really", "application/octet-stream")).run()
    assert not replay.exception
    assert "episode.npz was not opened" in replay.error[0].value
    assert sorted((tmp_path / "runs").iterdir()) == kept
    assert metric(replay, "Step") == "0"  # the open episode is still there


def test_live_episode_opens_in_replay(live):
    for _ in range(5):
        button(live, "Step").click().run()
    button(live, "Open in replay").click().run()
    assert not live.exception, live.exception
    assert live.title[0].value == "Replay"
    assert any(c.value.startswith("CartPole-v1 · shipped · seed 0 · 5 steps") for c in live.caption)
    assert metric(live, "Step") == "4"


def test_replay_offers_every_export(replay):
    record(replay)
    assert [b.label for b in replay.get("download_button")] == [
        "Download CSV", "Download JSON", "Download HTML report", "Download GIF", "Download MP4"]


@pytest.mark.parametrize("how", ["Edit the state", "Take another action"])
def test_replay_forks_from_the_current_step(replay, how):
    record(replay)
    next(s for s in replay.slider if s.label == "Step").set_value(30).run()
    next(r for r in replay.radio if r.label == "From step 30").set_value(how).run()
    if how == "Edit the state":
        next(s for s in replay.slider if s.label == "pole angle (rad)").set_value(0.15).run()
    button(replay, "Roll out the fork").click().run()
    assert not replay.exception, replay.exception
    summary = next(i.value for i in replay.info if i.value.startswith("From step 30"))
    assert "the original went on for 470 steps and earned 470.0; the fork lasted" in summary
    assert {"original", "fork"} <= {m.value.strip("*") for m in replay.markdown}


def test_replay_compares_with_another_seed_and_a_library_episode(replay):
    record(replay)
    button(replay, "Save to library").click().run()
    next(n for n in replay.number_input if n.label == "Other seed").set_value(3).run()
    button(replay, "Compare").click().run()
    assert not replay.exception, replay.exception
    summary = next(i.value for i in replay.info if i.value.startswith("This episode"))
    assert "the other (shipped, seed 3)" in summary.lower() and "differ most on" in summary

    next(n for n in replay.sidebar.number_input if n.label == "Seed").set_value(5).run()
    button(replay, "Record episode").click().run()
    next(r for r in replay.radio if r.label == "Compare with").set_value("an episode from the library").run()
    button(replay, "Compare").click().run()
    assert not replay.exception, replay.exception
    summary = next(i.value for i in replay.info if i.value.startswith("This episode"))
    assert "seed 5" in summary and "seed 0" in summary


# ---- Trust ----

def test_trust_checks_a_reference_state_with_five_verdicts():
    at = run_app("pages/trust.py")
    assert at.title[0].value == "Can this explanation be believed?"
    verdicts = [m.value for m in [*at.success, *at.warning] if m.value.startswith(("**PASS**", "**WARN**"))]
    assert len(verdicts) == 5
    assert any("Does the arithmetic add up?" in v and v.startswith("**PASS**") for v in verdicts)
    assert len(at.get("plotly_chart")) == 6


def test_trust_checks_the_live_state_and_follows_the_settings():
    at = run_app()
    for _ in range(3):
        button(at, "Step").click().run()
    at.switch_page("pages/trust.py").run()
    assert not at.exception, at.exception
    radio = next(r for r in at.radio if r.label == "State to check")
    assert radio.value == "the Live page's current state (step 3)"
    sidebar_select(at, "Explain").set_value("contrast").run()
    assert not at.exception, at.exception
    assert "log P(push right) − log P(push left)" in " ".join(m.value for m in at.markdown)
    sidebar_select(at, "Environment").set_value("Pendulum-v1").run()
    assert not at.exception, at.exception
    assert len([m for m in [*at.success, *at.warning] if m.value.startswith(("**PASS**", "**WARN**"))]) == 5


def test_trust_measures_faithfulness_over_the_replay_episode(replay):
    record(replay)
    replay.switch_page("pages/trust.py").run()
    assert not replay.exception, replay.exception
    next(t for t in replay.toggle if t.label.startswith("Over every step of the Replay episode (500 steps)")).set_value(
        True
    ).run()
    assert not replay.exception, replay.exception
    assert any("Do the important features really matter?" in c.value for c in replay.caption)


# ---- Pong, the pixel agent ----

def test_pong_live_paints_its_screen_names_objects_and_opens_in_replay(live):
    sidebar_select(live, "Environment").set_value("ALE/Pong-v5").run()
    assert not live.exception, live.exception
    assert sidebar_select(live, "Baseline").value == "empty playfield"
    assert any("How this agent was trained: " in c.value for c in live.sidebar.caption)
    for _ in range(3):
        button(live, "Step").click().run()
    assert not live.exception, live.exception
    assert metric(live, "Step") == "3"
    assert any("99th percentile" in c.value for c in live.caption)
    assert sum("data:image/png;base64" in m.value for m in live.markdown) >= 2  # the screen and the frame panels
    bars = bar_charts(live)[0]
    assert all(name in bars for name in ("ball", "agent's paddle", "opponent's paddle", "score", "everything else"))
    assert "gap" in live.info[0].value
    next(t for t in live.toggle if t.label == "Magnitude only").set_value(True).run()
    assert not live.exception
    button(live, "Open in replay").click().run()
    assert not live.exception, live.exception
    assert any(c.value.startswith("ALE/Pong-v5 · shipped · seed 0 · 3 steps") for c in live.caption)
    assert any("99th percentile" in c.value for c in live.caption) and "gap" in live.info[0].value
    assert [b.label for b in live.get("download_button")][:2] == ["Download CSV", "Download JSON"]


@pytest.mark.parametrize("baseline", ["black", "blurred state"])
def test_pong_baselines(live, baseline):
    sidebar_select(live, "Environment").set_value("ALE/Pong-v5").run()
    sidebar_select(live, "Baseline").set_value(baseline).run()
    button(live, "Step").click().run()
    assert not live.exception, live.exception
    assert "gap" in live.info[0].value


def test_an_upload_for_pong_with_the_wrong_input_shape_gets_a_message(live, tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6)])
    model.save(tmp_path / "vector.keras")
    next(s for s in live.sidebar.selectbox if s.label == "For environment").set_value("ALE/Pong-v5").run()
    uploader = next(u for u in live.get("file_uploader") if u.label.startswith("Upload a policy"))
    uploader.set_value(("vector.keras", (tmp_path / "vector.keras").read_bytes(), "application/octet-stream")).run()
    assert not live.exception
    message = live.sidebar.error[0].value
    assert "takes inputs of shape (batch, 4)" in message and "(4, 84, 84)" in message
    assert sidebar_select(live, "Environment").value == "CartPole-v1"


def test_trust_checks_a_pong_state_with_occlusion_beside_ig():
    at = run_app()
    sidebar_select(at, "Environment").set_value("ALE/Pong-v5").run()
    button(at, "Step").click().run()
    at.switch_page("pages/trust.py").run()
    assert not at.exception, at.exception
    verdicts = [m.value for m in [*at.success, *at.warning] if m.value.startswith(("**PASS**", "**WARN**"))]
    assert len(verdicts) == 5
    assert any("Does painting an object out change the decision as IG says?" in v for v in verdicts)
    assert any("IG and occlusion rank the objects" in c.value for c in at.caption)
    bars = at.get("plotly_chart")[1].proto.spec  # the baselines' bars: one per object
    assert all(name in bars for name in ("ball", "agent's paddle", "empty playfield", "blurred state"))


# ---- highway-fast-v0, the driving agent ----

def test_the_driving_agent_steps_in_live_names_vehicles_and_opens_in_replay(live):
    sidebar_select(live, "Environment").set_value("highway-fast-v0").run()
    assert not live.exception, live.exception
    for _ in range(2):
        button(live, "Step").click().run()
    assert not live.exception, live.exception
    assert metric(live, "Step") == "2"
    reading = live.success[0].value
    assert reading.startswith("The agent chose") and ("the car" in reading or "its own speed" in reading)
    assert sum("data:image/png;base64" in m.value for m in live.markdown) >= 1  # the road, each car tinted
    bars = bar_charts(live)[0]
    assert "ego car" in bars and "empty slot" not in bars
    assert "gap" in live.info[0].value
    next(t for t in live.toggle if t.label == "Bars per feature").set_value(True).run()
    assert not live.exception, live.exception
    assert "ego car: vx (m" in bar_charts(live)[1]
    button(live, "Open in replay").click().run()
    assert not live.exception, live.exception
    assert any(c.value.startswith("highway-fast-v0 · shipped · seed 0 · 2 steps") for c in live.caption)
    assert [b.label for b in live.get("download_button")][:2] == ["Download CSV", "Download JSON"]


def test_trust_checks_a_driving_state_with_each_vehicle_taken_away():
    at = run_app()
    sidebar_select(at, "Environment").set_value("highway-fast-v0").run()
    button(at, "Step").click().run()
    at.switch_page("pages/trust.py").run()
    assert not at.exception, at.exception
    verdicts = [m.value for m in [*at.success, *at.warning] if m.value.startswith(("**PASS**", "**WARN**"))]
    assert len(verdicts) == 5
    assert any("IG and occlusion rank the objects" in c.value for c in at.caption)
    assert any(m.value.startswith("State: its own speed and place") for m in at.markdown)
    assert any("over 5 objects" in v for v in verdicts)  # every vehicle slot taken away in turn, none left out


# ---- Runs ----

@pytest.fixture(scope="module")
def job_folder(tmp_path_factory, local_ray):
    """A small batch job's results: two 'checkpoints' of CartPole's policy (its shipped file under two
    names and training steps), two episodes each."""
    import keras

    from attribution.batch import job
    from attribution.rl.policies import POLICY_DIR, save_policy

    root = tmp_path_factory.mktemp("runs")
    model = keras.saving.load_model(POLICY_DIR / "CartPole-v1.keras", compile=False)
    for steps in (1000, 2000):
        save_policy(model, "CartPole-v1", root / "checkpoints", name=f"cartpole-step{steps}", training_steps=steps)
    pointer, job.LAST_JOB = job.LAST_JOB, root / "last-batch-job.txt"
    try:
        job.run_job(job.prepare_job([str(root / "checkpoints")], record=2, seed=3), root / "results")
    finally:
        job.LAST_JOB = pointer
    return root / "results"


def open_runs(folder) -> AppTest:
    at = run_app("pages/runs.py")
    at.text_input(key="runs_folder").set_value(str(folder)).run()
    assert not at.exception, at.exception
    return at


def test_runs_reads_a_job_per_action_gap_and_checkpoint(job_folder):
    at = open_runs(job_folder)
    assert at.title[0].value == "Runs"
    assert any("**2,000 states** of CartPole-v1" in m.value for m in at.markdown)  # 2 policies x 2 x 500 steps
    sentences = [m.value for m in at.markdown if "mattered most for P(push" in m.value]
    assert len(sentences) == 2 and all("across episodes" in s for s in sentences)  # one per action
    assert any("of the states are within 1%" in c.value for c in at.caption)
    assert [s.value for s in at.subheader][-1] == "How its reasons changed while it learned"
    assert at.selectbox(key="runs_policy").value == 1  # the latest checkpoint first


def test_runs_opens_a_state_in_replay_with_the_policy_that_played_it(job_folder):
    at = open_runs(job_folder)
    at.selectbox(key="runs_state").set_value(2).run()
    state = at.dataframe[0].value.iloc[2]
    at.button(key="runs_open").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Replay"
    assert metric(at, "Step") == str(state["step"])
    assert any(f"seed {state['episode seed']}" in c.value for c in at.caption)
    assert at.session_state.env_id.startswith("CartPole-v1 · cartpole-step")


def unfinished_copy(job_folder, tmp_path, change) -> Path:
    """The job's results copied, with ``change`` applied to the copy's manifest."""
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(job_folder, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    change(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_runs_of_an_unfinished_job_shows_the_policies_done_so_far(job_folder, tmp_path):
    def only_the_first_checkpoint(manifest):
        manifest["shards"] = {name: info for name, info in manifest["shards"].items() if name.startswith("p0-")}

    at = open_runs(unfinished_copy(job_folder, tmp_path, only_the_first_checkpoint))
    assert any("2 of 4 shards are done" in w.value for w in at.warning)
    assert any("**1,000 states**" in m.value for m in at.markdown)
    assert len([m for m in at.markdown if "mattered most for P(push" in m.value]) == 2
    assert not [s for s in at.subheader if s.value == "How its reasons changed while it learned"]


def test_runs_refuses_to_open_a_policy_file_that_changed_since_the_job(job_folder, tmp_path):
    def other_digests(manifest):
        for spec in manifest["job"]["policies"]:
            spec["digest"] = "0" * 64

    at = open_runs(unfinished_copy(job_folder, tmp_path, other_digests))
    at.button(key="runs_open").click().run()
    assert not at.exception and at.title[0].value == "Runs"
    assert any("has changed since the batch job read it" in e.value for e in at.error)


def test_runs_without_results_says_how_to_make_them(tmp_path):
    at = open_runs(tmp_path / "nothing-here")
    assert any("python -m attribution.batch" in i.value for i in at.info)
