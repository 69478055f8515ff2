"""The player the shipped Pong policy imitates: where it expects the ball, and that it wins points."""

import numpy as np
import pytest

from attribution.rl.environments import make_env
from attribution.training.pong_teacher import (
    BALL_X,
    BALL_Y,
    DOWN,
    PADDLE_COLUMN,
    PADDLE_TO_BALL,
    PADDLE_Y,
    STAY,
    UP,
    WALLS,
    PongTeacher,
    delay_chances,
    meeting_row,
)


def test_a_ball_moving_straight_at_the_paddle_meets_it_on_its_own_row():
    assert meeting_row(100, 120, 4, 0) == (120, 1)


def test_a_ball_moving_away_from_the_paddle_does_not_meet_it():
    assert meeting_row(100, 120, -4, 2) is None


@pytest.mark.parametrize(("y", "dy", "expected"), [(WALLS[1] - 5, 1, (WALLS[1] - 5, -1)),
                                                  (WALLS[0] + 5, -1, (WALLS[0] + 5, 1)),
                                                  (WALLS[0] + 5, 33, (WALLS[0] + 13, 1))])
def test_the_walls_reflect_the_ball(y, dy, expected):
    """10 columns from the paddle, moving 1 row per column: it goes 5 rows past the wall and 5 back,
    moving the other way; moving 33 rows per column, off both walls and 13 rows on, it moves as it did."""
    assert meeting_row(PADDLE_COLUMN - 10, y, 1, dy) == pytest.approx(expected)


def test_the_teacher_wins_most_of_the_first_points_of_a_game():
    env = make_env("ALE/Pong-v5")
    env.reset(seed=0)
    teacher, won, lost = PongTeacher(env), 0, 0
    while won + lost < 4:
        action = teacher.act()
        assert action in (0, 2, 3)
        _, reward, terminated, truncated, _ = env.step(action)
        won, lost = won + (reward > 0), lost + (reward < 0)
        assert not (terminated or truncated)
    env.close()
    assert won >= 3, f"won {won} of the first {won + lost} points"


def test_the_teachers_equally_good_actions_hold_its_own_and_are_several_only_where_it_plans():
    """Its action is among its best, its best among those that return the ball; away from the paddle it
    names one action, and near it, at least sometimes, more than one; a state is critical only where
    some action is worse than its best, and some are."""
    env = make_env("ALE/Pong-v5")
    env.reset(seed=0)
    teacher, widest, critical = PongTeacher(env), 0, 0
    legal = sum(1 << a for a in (STAY, UP, DOWN))
    for _ in range(300):
        choice = teacher.choose()
        assert (choice.best >> choice.action) & 1 and choice.best & ~choice.returning == 0
        assert choice.returning & ~legal == 0
        assert not choice.critical or choice.best != legal
        widest, critical = max(widest, bin(choice.returning).count("1")), critical + choice.critical
        env.step(choice.action)
    env.close()
    assert widest >= 2 and 0 < critical < 100


@pytest.mark.parametrize("aim_with_ball", [False, True])
def test_aiming_with_the_ball_meets_a_rising_ball_below_the_paddles_middle(aim_with_ball):
    """Without planning, where the ball meets the paddle follows the aim: 7 rows above the middle for
    every ball, or, aiming with the ball, below the middle for one that arrives moving up."""
    env = make_env("ALE/Pong-v5")
    env.reset(seed=1)
    teacher = PongTeacher(env, horizon=0, aim=7.0, aim_with_ball=aim_with_ball)
    below = {1: [], -1: []}  # rows the ball meets below the paddle's middle, by the way it moves then
    last = env.unwrapped.ale.getRAM().astype(int)
    for _ in range(3000):
        choice, ram = teacher.choose(), env.unwrapped.ale.getRAM().astype(int)
        if choice.steps_left == 1:
            dx, dy = ram[BALL_X] - last[BALL_X], ram[BALL_Y] - last[BALL_Y]
            row, direction = meeting_row(ram[BALL_X], ram[BALL_Y], dx, dy)
            below[direction].append(row - ram[PADDLE_Y] - PADDLE_TO_BALL)
        env.step(choice.action)
        last = ram
    env.close()
    assert len(below[1]) >= 3 and len(below[-1]) >= 3
    assert np.median(below[1]) < 0
    assert (np.median(below[-1]) > 0) == aim_with_ball


def test_a_new_action_comes_late_by_each_number_of_frames_with_the_chance_of_repeating_the_old_one():
    """v5's sticky actions repeat the previous frame's action with chance 0.25 each frame: on time 3 in 4,
    one frame late 3 in 16, two or more the rest; no delays asked, always on time."""
    assert delay_chances(2, 0.25) == ((0, 0.75), (1, 0.1875), (2, 0.0625))
    assert delay_chances(0, 0.25) == ((0, 1.0),)
    assert sum(chance for _, chance in delay_chances(5, 0.3)) == pytest.approx(1.0)


def test_a_plan_played_with_a_late_switch_moves_the_paddle_later():
    """On the planner, pressing UP after staying moves the paddle up (its y falls) less in one step when
    the switch comes two frames late; a teacher remembers the action it played last, STAY after a reset."""
    env = make_env("ALE/Pong-v5")
    env.reset(seed=0)
    teacher = PongTeacher(env, sticky_delay=2)
    assert teacher.delays == delay_chances(2, 0.25)
    for _ in range(60):  # the paddle away from the top wall
        env.step(DOWN)
    start, paddle = env.unwrapped.ale.cloneState(), int(env.unwrapped.ale.getRAM()[PADDLE_Y])
    moved = {}
    for delay in (0, 2):
        teacher.planner.restoreState(start)
        teacher._play((UP,), 1, delay)
        moved[delay] = paddle - int(teacher.planner.getRAM()[PADDLE_Y])
    assert moved[0] > moved[2] >= 0, moved
    action = teacher.act()
    assert teacher.last_action == action
    teacher.reset()
    assert teacher.last_action == STAY
    env.close()


def test_allowing_for_late_switches_changes_which_action_is_best_but_not_which_return_on_time():
    """Beside a teacher planning on time only, on the same states: the late-switch teacher's returning
    actions hold every action the other returns the ball with, and its best; and somewhere its best
    differs (a move that returns only if it comes on time is no longer best)."""
    env = make_env("ALE/Pong-v5")
    env.reset(seed=2)
    late, on_time = PongTeacher(env, sticky_delay=2), PongTeacher(env)
    differed = planned = 0
    for _ in range(1500):
        choice, plain = late.choose(), on_time.choose()
        assert plain.returning & ~choice.returning == 0 and choice.best & ~choice.returning == 0
        planned += choice.steps_left in range(1, late.horizon + 1)
        differed += choice.best != plain.best
        env.step(choice.action)
        late.last_action = on_time.last_action = choice.action
    env.close()
    assert planned > 50 and differed > 0, (planned, differed)


def test_the_point_is_still_decided_in_the_step_after_the_ball_reaches_the_paddles_column():
    """The ball bounces off the paddle in the frames after it reaches the paddle's column: a teacher
    planning down to a step past it (plan_until=-1) finds states there whose moves lead to different
    outcomes (critical), where the teacher stopping a step before (the default, 1) takes its unplanned move;
    further from the paddle both choose alike."""
    env = make_env("ALE/Pong-v5")
    env.reset(seed=2)
    through, before = PongTeacher(env, plan_until=-1), PongTeacher(env)
    decided_at_contact = 0
    for _ in range(1500):
        choice, old = through.choose(), before.choose()
        if choice.steps_left > 0:
            assert choice == old
        elif choice.critical:
            assert not old.critical and choice.steps_left in (0, -1), (choice, old)
            decided_at_contact += 1
        env.step(choice.action)
    env.close()
    assert decided_at_contact > 0
