"""The player the shipped Pong policy imitates: where it expects the ball, and that it wins points."""

import pytest

from attribution.rl.environments import make_env
from attribution.training.pong_teacher import DOWN, PADDLE_COLUMN, STAY, UP, WALLS, PongTeacher, meeting_row


def test_a_ball_moving_straight_at_the_paddle_meets_it_on_its_own_row():
    assert meeting_row(100, 120, 4, 0) == 120


def test_a_ball_moving_away_from_the_paddle_does_not_meet_it():
    assert meeting_row(100, 120, -4, 2) is None


@pytest.mark.parametrize(("y", "dy", "expected"), [(WALLS[1] - 5, 1, WALLS[1] - 5), (WALLS[0] + 5, -1, WALLS[0] + 5)])
def test_the_walls_reflect_the_ball(y, dy, expected):
    """10 columns from the paddle, moving 1 row per column: it goes 5 rows past the wall and 5 back."""
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
