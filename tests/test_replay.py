"""Whole episodes explained in one call, their bookmarks, exports and the episode library."""

import csv
import io
import json
import re

import numpy as np
import pytest

from attribution import explain, integrated_gradients
from attribution.analysis.bookmarks import find_bookmarks
from attribution.analysis.episode_attribution import attribute_episode, softmax
from attribution.episodes import EpisodeError, record_episode, save_episode
from attribution.presentation.exports import CSV_COLUMNS, html_report, to_csv, to_json
from attribution.presentation.plots import attribution_timeline, downsample_extremes
from attribution.rl.library import EpisodeLibrary
from attribution.rl.policies import load_policy

ACTIONS = ("left", "right")


@pytest.fixture(scope="module")
def cartpole():
    policy = load_policy("CartPole-v1")
    episode = record_episode(policy, seed=4, max_steps=60)
    model = explain.action_probabilities(policy.model)
    explained = attribute_episode(model, episode, episode.actions, [f"P({ACTIONS[a]})" for a in episode.actions],
                                  np.zeros(4, np.float32), 64, "gausslegendre", {"explain": "action probability"})
    return policy, episode, model, explained


def test_one_call_gives_what_the_engine_gives_state_by_state(cartpole):
    policy, episode, model, explained = cartpole
    for t in (0, 17, 59):
        alone = integrated_gradients(model, episode.observations[t:t + 1], target=int(episode.actions[t]))
        np.testing.assert_allclose(explained.attributions[t], alone.attributions[0], rtol=1e-5, atol=1e-7)
    probabilities = softmax(episode.policy_outputs)
    np.testing.assert_allclose(explained.at_state, probabilities[np.arange(60), episode.actions], rtol=1e-5)
    assert np.all(np.abs(explained.delta) <= 0.01 * np.abs(explained.at_state - explained.at_baseline) + 1e-5)
    assert explained.seconds > 0 and explained.output_names[0] == f"P({ACTIONS[episode.actions[0]]})"


def test_bookmarks_find_what_was_planted():
    actions = np.array([0] * 10 + [1] * 5 + [0] * 5)
    rewards = np.ones(20)
    rewards[12], rewards[3] = 100.0, -50.0
    attributions = np.zeros((20, 2))
    attributions[:, 0] = 0.5
    attributions[8:, 0] = -0.5  # feature a flips at step 8
    attributions[:, 1] = 0.01   # feature b never matters
    probabilities = np.tile([0.99, 0.01], (20, 1))
    probabilities[6] = [0.55, 0.45]
    marks = find_bookmarks(actions, attributions, rewards, ["a", "b"], ACTIONS, probabilities)
    by_kind = {kind: [m.step for m in marks if m.kind == kind] for kind in {m.kind for m in marks}}
    assert by_kind["action change"] == [10, 15]
    assert by_kind["least certain"] == [6]  # the others are 99% sure
    assert by_kind["sign flip"] == [8]
    assert by_kind["reward"] == [12] and by_kind["penalty"] == [3]
    assert [m.step for m in marks] == sorted(m.step for m in marks)
    assert "right after 10 steps of left" in next(m.text for m in marks if m.step == 10)


def test_a_steady_episode_has_no_bookmarks():
    assert find_bookmarks(np.zeros(30, int), np.ones((30, 3)), np.ones(30), ["a", "b", "c"], ACTIONS,
                          np.tile([0.95, 0.05], (30, 1))) == []


def test_continuous_actions_bookmark_a_change_of_sign():
    actions = np.array([[0.5], [0.4], [-0.6], [-0.5]], np.float32)
    marks = find_bookmarks(actions, np.ones((4, 2)), np.zeros(4), ["a", "b"])
    assert [(m.step, m.kind) for m in marks] == [(2, "action change")]


def test_csv_rows_are_the_engines_numbers(cartpole):
    policy, episode, _, explained = cartpole
    rows = list(
        csv.reader(io.StringIO(to_csv(episode, explained, policy.info.feature_names, policy.info.action_names)))
    )
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 1 + 60 * 4
    step_10 = [row for row in rows[1:] if row[0] == "10"]
    assert [row[1] for row in step_10] == list(policy.info.feature_names)
    np.testing.assert_array_equal([float(row[4]) for row in step_10], explained.attributions[10])  # exact round trip
    np.testing.assert_array_equal([float(row[5]) for row in step_10], episode.observations[10])
    assert (
        step_10[0][2] == policy.info.action_names[episode.actions[10]] and step_10[0][3] == explained.output_names[10]
    )


def test_json_holds_the_settings_and_the_completeness_gap(cartpole):
    policy, episode, _, explained = cartpole
    found = json.loads(to_json(episode, explained, policy.info.feature_names, policy.info.action_names))
    assert found["environment"] == "CartPole-v1" and found["settings"] == {"explain": "action probability"}
    assert len(found["per_step"]) == 60
    step = found["per_step"][10]
    np.testing.assert_array_equal(step["attributions"], explained.attributions[10])
    assert step["completeness_gap"] == pytest.approx(
        sum(step["attributions"]) - (step["output_at_state"] - step["output_at_baseline"]), abs=1e-6
    )


def test_html_report_opens_without_a_network(cartpole):
    policy, episode, _, explained = cartpole
    figure = attribution_timeline(policy.info.feature_names, explained.attributions, episode.actions, episode.rewards,
                                  policy.info.action_names)
    page = html_report("A <report>", ["gap 0.1%"], {"baseline": "zeros"}, [figure, figure])
    assert page.startswith("<!DOCTYPE html>") and "A &lt;report&gt;" in page and "gap 0.1%" in page
    assert not re.search(r'<script[^>]+src="http', page)  # Plotly's script is inline, not fetched
    assert page.count("Plotly.newPlot") == 2 and len(page) > 1_000_000


def test_downsampling_keeps_every_spike():
    values = np.zeros((5000, 2))
    values[1234, 0], values[4321, 1] = 9.0, -7.0
    steps, picked = downsample_extremes(values, 400)
    assert len(steps) == 400 and steps[0] == 0 and np.all(np.diff(steps) > 0)
    assert picked[:, 0].max() == 9.0 and picked[:, 1].min() == -7.0
    assert downsample_extremes(values[:300], 400)[1].shape == (300, 2)


def test_library_lists_saves_and_deletes(cartpole, tmp_path):
    _, episode, _, _ = cartpole
    library = EpisodeLibrary(tmp_path / "runs")
    assert library.entries() == []
    names = {library.save(episode), library.save(episode)}  # two saves of the same moment keep two files
    assert len(names) == 2
    entries = library.entries()
    assert {e.name for e in entries} == names and entries[0].length == 60 and entries[0].env_id == "CartPole-v1"
    np.testing.assert_array_equal(library.load(entries[0].name).observations, episode.observations)
    library.delete(entries[0].name)
    assert [e.name for e in library.entries()] == [entries[1].name]


@pytest.mark.parametrize("name", ["../secret.npz", "/etc/passwd", "missing.npz", "notes.txt"])
def test_library_refuses_names_outside_it(tmp_path, name):
    library = EpisodeLibrary(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(EpisodeError, match="no episode named"):
        library.delete(name)
    assert (tmp_path / "notes.txt").exists()


def test_a_damaged_upload_changes_nothing_in_the_library(cartpole, tmp_path):
    _, episode, _, _ = cartpole
    library = EpisodeLibrary(tmp_path)
    kept = library.save(episode)
    save_episode(episode, tmp_path / "elsewhere.bin")
    data = (tmp_path / "elsewhere.bin").read_bytes()
    (tmp_path / "elsewhere.bin").unlink()
    for damaged in (b"not an episode", data[: len(data) // 2]):
        with pytest.raises(EpisodeError):
            library.add_file(damaged)
    assert [e.name for e in library.entries()] == [kept] and sorted(p.name for p in tmp_path.iterdir()) == [kept]
    assert library.add_file(data) != kept and len(library.entries()) == 2


def test_a_live_episode_is_rebuilt_exactly_from_its_seed_and_actions(cartpole):
    policy, episode, _, _ = cartpole
    rebuilt = record_episode(policy, seed=4, actions=episode.actions[:25])
    assert len(rebuilt) == 25 and len(rebuilt.frames) == 25
    np.testing.assert_array_equal(rebuilt.observations, episode.observations[:25])
    np.testing.assert_array_equal(rebuilt.frames[24], episode.frames[24])


def test_gif_and_mp4_show_the_frame_beside_the_bars(cartpole):
    import av
    from PIL import Image

    from attribution.presentation.animation import PANEL_WIDTH, storyboard, to_gif, to_mp4

    policy, episode, _, explained = cartpole
    images = storyboard(episode.frames, explained.attributions, policy.info.feature_names,
                        [f"step {t}" for t in range(60)], max_frames=30)
    height, width, _ = episode.frames[0].shape
    assert len(images) == 30 and images[0].shape == (height, width + PANEL_WIDTH, 3)
    np.testing.assert_array_equal(images[1][:, :width], episode.frames[2])  # every second step, frame unchanged
    panel = images[0][:, width:]
    assert (np.abs(panel.astype(int) - [31, 119, 180]).sum(axis=2) == 0).any() or \
           (np.abs(panel.astype(int) - [214, 39, 40]).sum(axis=2) == 0).any()  # a bar in the app's colours

    gif = Image.open(io.BytesIO(to_gif(images)))
    assert gif.n_frames == 30 and gif.size == (width + PANEL_WIDTH, height)
    with av.open(io.BytesIO(to_mp4(images))) as video:
        decoded = [frame.to_ndarray(format="rgb24") for frame in video.decode(video=0)]
    assert len(decoded) == 30 and decoded[0].shape[:2] == (height - height % 2, (width + PANEL_WIDTH) // 2 * 2)


def test_a_storyboard_needs_one_frame_per_step():
    from attribution.presentation.animation import storyboard

    with pytest.raises(ValueError, match="need one frame per step; received 2 frames for 3 steps"):
        storyboard([np.zeros((4, 4, 3), np.uint8)] * 2, np.zeros((3, 2)), ["a", "b"], ["", "", ""])


def test_comparison_shows_both_episodes_and_their_difference_at_matched_steps():
    from attribution.presentation.plots import comparison_heatmaps

    first, second = np.arange(12.0).reshape(6, 2), np.ones((4, 2))
    figure = comparison_heatmaps(["a", "b"], first, second, "A", "B")
    heatmaps = [trace for trace in figure.data if trace.type == "heatmap"]
    assert [h.z.shape for h in heatmaps] == [(2, 6), (2, 4), (2, 4)]
    np.testing.assert_array_equal(heatmaps[2].z, (first[:4] - second).T)
    assert [a.text for a in figure.layout.annotations] == ["A", "B", "A − B"]
