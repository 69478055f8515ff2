"""An episode's observations kept compactly: a frame stack keeps one new frame a step."""

import numpy as np
import pytest

from attribution.rl.episodes import load_episode, save_episode
from attribution.rl.history import ObservationHistory, compact_stacks, kept_bytes, stacked_view
from attribution.rl.rollout import EpisodeStepper


def test_a_pong_game_keeps_one_frame_a_step_and_gives_back_every_stack():
    with EpisodeStepper("ALE/Pong-v5", seed=3) as run:
        seen = []
        for t in range(60):
            seen.append(run.observation.copy())
            run.step(t % 6)
        assert len(run.observations) == 60
        np.testing.assert_array_equal(run.observations[:], np.stack(seen))
        np.testing.assert_array_equal(run.observations[17], seen[17])
        np.testing.assert_array_equal(run.observations[-1], seen[-1])
        assert run.observations[:].dtype == np.uint8
        frame = seen[0][0].nbytes  # 84 x 84 bytes
        assert run.observations.nbytes == (4 + 59) * frame  # the first stack, then one frame a step
        episode = run.episode("test", greedy=False)
        np.testing.assert_array_equal(episode.observations, np.stack(seen))
        assert episode.observations.base is not None and not episode.observations.flags.writeable  # a view


def test_stacks_that_do_not_continue_each_other_and_vectors_are_kept_whole(rng):
    history = ObservationHistory()
    stacks = rng.integers(0, 255, (5, 4, 6, 7), dtype=np.uint8)
    for stack in stacks:
        history.append(stack)
    shifted = np.concatenate([stacks[-1][1:], stacks[0][:1]])  # continues the last stack
    history.append(shifted)
    np.testing.assert_array_equal(history[:5], stacks)
    np.testing.assert_array_equal(history[5], shifted)
    assert history.nbytes == (5 * 4 + 1) * 42
    stacks[0, 0, 0, 0] += 1  # the history holds copies, not the caller's arrays
    assert history[0][0, 0, 0] != stacks[0, 0, 0, 0]

    vectors = ObservationHistory()
    for state in rng.normal(size=(3, 4)).astype(np.float32):
        vectors.append(state)
    assert len(vectors) == 3 and vectors[1:].shape == (2, 4) and np.asarray(vectors).dtype == np.float32
    vectors.clear()
    assert len(vectors) == 0 and np.asarray(vectors).size == 0


def test_a_recorded_episodes_stacks_are_a_view_of_its_frames_in_memory_and_whole_on_disk(tmp_path):
    with EpisodeStepper("ALE/Pong-v5", seed=1) as run:
        for t in range(40):
            run.step(t % 6, np.zeros(6, np.float32))
        episode = run.episode("test", greedy=False)
    dense = np.array(episode.observations)
    assert episode.observations.strides[:2] == (84 * 84, 84 * 84)  # step t + 1 starts one frame after step t
    assert kept_bytes(episode.observations) == (4 + 39) * 84 * 84 and kept_bytes(dense) == dense.nbytes
    with pytest.raises(ValueError, match="read-only"):
        episode.observations[0, 0, 0, 0] = 1
    loaded = load_episode(save_episode(episode, tmp_path / "pong.npz"))  # written as plain stacks
    np.testing.assert_array_equal(loaded.observations, dense)
    assert loaded.observations.strides[0] == loaded.observations.strides[1]  # compact again


def test_observations_that_are_not_one_chain_of_stacks_stay_as_they_are(rng):
    frames = rng.integers(0, 255, (10, 3, 5), dtype=np.uint8)
    stacks = stacked_view(frames, 4)
    assert stacks.shape == (7, 4, 3, 5)
    np.testing.assert_array_equal(stacks[5], frames[5:9])
    chain = np.array(stacks)
    np.testing.assert_array_equal(compact_stacks(chain, rows_per_check=2), chain)
    assert compact_stacks(chain, rows_per_check=2).strides[0] == 3 * 5  # one frame a step
    broken = chain.copy()
    broken[6, 0, 0, 0] += 1  # the last stack no longer continues the one before
    assert compact_stacks(broken, rows_per_check=2) is broken
    vectors = rng.normal(size=(5, 4)).astype(np.float32)
    assert compact_stacks(vectors) is vectors
