"""The critic that labels the Pong student's states near its paddle from its own rollouts."""

import numpy as np

from attribution.rl.environments import make_env
from attribution.training.pong_rollouts import FIRST_ACTIONS, RolloutCritic, _frame_stack, copy_state
from attribution.training.pong_teacher import BALL_Y, PADDLE_Y, UP, PongTeacher


def _stay(observations):
    return np.zeros(len(observations), int)


def test_the_critics_values_are_outcomes_of_its_rollouts_and_leave_the_game_being_played_as_it_was():
    """Two games from one seed, played alike: asking the critic in one changes nothing in it (its frames,
    its emulator, its sticky actions' draws), and each value is a mean of outcomes 0, 0.5 and 1."""
    played, twin = make_env("ALE/Pong-v5"), make_env("ALE/Pong-v5")
    played.reset(seed=3), twin.reset(seed=3)
    teacher, critic, asked = PongTeacher(played, horizon=0), RolloutCritic("ALE/Pong-v5", _stay, per_action=2), 0
    for _ in range(200):
        choice = teacher.choose()
        if 0 < choice.steps_left <= 4:
            values, asked = critic.values(played), asked + 1
            assert values.shape == (len(FIRST_ACTIONS),) and ((0 <= values) & (values <= 1)).all()
            np.testing.assert_array_equal(values * 4, np.round(values * 4))  # two rollouts of 0, 0.5 or 1 each
        seen, _, _, _, _ = played.step(choice.action)
        expected, _, _, _, _ = twin.step(choice.action)
        np.testing.assert_array_equal(seen, expected)
        np.testing.assert_array_equal(played.unwrapped.ale.getRAM(), twin.unwrapped.ale.getRAM())
    assert asked > 0


def test_a_ball_the_paddle_cannot_reach_is_worth_nothing_whatever_the_first_action():
    """The paddle kept at the top while the ball comes in low: every rollout loses the point."""
    env = make_env("ALE/Pong-v5")
    env.reset(seed=0)
    teacher, critic = PongTeacher(env, horizon=0), RolloutCritic("ALE/Pong-v5", _stay, per_action=2)
    for _ in range(400):
        choice = teacher.choose()
        ram = env.unwrapped.ale.getRAM()
        if choice.steps_left == 2 and int(ram[BALL_Y]) - int(ram[PADDLE_Y]) > 60:   # the ball far below the paddle
            np.testing.assert_array_equal(critic.values(env), 0.0)
            return
        env.step(UP)
    raise AssertionError("no ball came in far below the paddle")


def test_a_copy_of_the_game_has_its_emulator_and_its_frames():
    played, copy = make_env("ALE/Pong-v5"), make_env("ALE/Pong-v5")
    played.reset(seed=5), copy.reset(seed=6)
    for _ in range(30):
        observation, _, _, _, _ = played.step(UP)
    copy_state(played, copy)
    np.testing.assert_array_equal(copy.unwrapped.ale.getRAM(), played.unwrapped.ale.getRAM())
    np.testing.assert_array_equal(np.asarray(_frame_stack(copy).obs_queue), observation)
