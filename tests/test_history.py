"""An episode's observations kept compactly: a frame stack keeps one new frame a step."""

import numpy as np

from attribution.rl.history import ObservationHistory
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
        np.testing.assert_array_equal(run.episode("test", greedy=False).observations, np.stack(seen))


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
