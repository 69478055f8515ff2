"""A Pong player that reads the emulator: the teacher the shipped pixel policy imitates (DAgger).

It reads the ball's and its paddle's positions from the Atari's RAM. While the ball is far, it moves
its paddle towards where the ball will meet the paddle's column (walls reflect it), braking for the
paddle's momentum, so that the ball meets the paddle's upper part, which returns it at an angle
(with ``aim_with_ball``, the lower part for a ball arriving moving up, which a steep rising ball
would otherwise rise past). In the last ``horizon`` steps before the ball arrives it plans: it
tries a few short action sequences on a copy of the emulator's state, loaded into a second
emulator without sticky actions, and takes the first action of the one that returns the ball, a
steep return (which the computer's paddle often misses) first. Planning without random sticky
actions makes its choice a function of the state, which the student can learn, where averaging over
random repeats made the same state's label change from one visit to the next. With ``sticky_delay``
it still allows for them: each sequence is played with every switch of action on time and 1, 2, ...
frames late, and its outcomes are averaged with the chances v5's sticky actions give those delays.
The ball bounces off the paddle in the frames after it reaches the paddle's column, so the point is
still decided in the step after; with ``plan_until=-1`` it plans that step too. Stopping a step
before (``plan_until=1``) left the contact to its unplanned move, and nearly every point it lost was
one its plan had returned: a plan that needed a move in that step, which it then did not make.

In games with sticky actions it won +21, +21 and +20 (seeds 1 to 3); aiming at the paddle's middle,
+18 to +21 in longer games; planning with sticky actions, three tries a sequence, about +14; with
no planning, -5. Without the steep bonus, +7.6 over twelve games (seeds 800 to 811), and aiming 7
rows with the ball, +15.3 over the same twelve; with a dead band of 14 rows too (what the shipped
student learnt from, ``dagger_pixels``' defaults), +14.2, and +12.5 without planning; allowing for
switches up to 2 frames late as well, +18.6 ± 2.2, though its students did worse (README); planning
through the contact instead (``plan_until=-1``, on time), +18.1 ± 1.7.

Near the paddle several first actions often lead to the same outcome, and which one the teacher
takes is an accident of the order it tries them in; a student asked to copy that disagreed with it
on a third of those states. So ``choose`` also says which actions are as good as its own: every
first action that can still reach the best outcome, and every one that can still return the ball.
"""

from __future__ import annotations

from typing import NamedTuple

import ale_py
import numpy as np
from ale_py import roms

BALL_X, BALL_Y, PADDLE_Y = 49, 54, 51          # RAM addresses (the ball is off the screen when its y is 0)
PADDLE_COLUMN = 187                            # the ball's x when it reaches the agent's paddle
WALLS = (44, 205)                              # the ball's y at the top and bottom walls
PADDLE_TO_BALL = 6                             # the ball's y minus the paddle's y when the ball meets its middle
REST_Y = 125                                   # where the paddle waits while the ball moves away
STAY, UP, DOWN = 0, 2, 3                       # Pong's actions in gymnasium's minimal action set
ROM = "pong"


def meeting_row(x: int, y: int, dx: int, dy: int) -> tuple[float, int] | None:
    """The ball's y when it reaches the paddle's column, reflected by the walls, and which way it moves
    then (1 down, -1 up); None if it moves away."""
    if dx <= 0:
        return None
    row = y + dy * (PADDLE_COLUMN - x) / dx
    low, span = WALLS[0], WALLS[1] - WALLS[0]
    folded = (row - low) % (2 * span)
    down = (dy >= 0) == (folded <= span)   # an odd number of walls turns it round
    return low + (folded if folded <= span else 2 * span - folded), 1 if down else -1


class Choice(NamedTuple):
    """The teacher's action, and the actions as good as it as bit masks (bit ``a`` set for action ``a``):
    ``best`` reach its outcome, ``returning`` return the ball with their switches on time (and ``best``).
    ``critical``: the ball is near and its first actions lead to different outcomes, the few states a
    player must get right. ``steps_left``: the steps until the ball reaches the paddle's column (0 or
    less once it is there and still coming), 0 when it moves away."""
    action: int
    best: int
    returning: int
    critical: bool = False
    steps_left: int = 0


class PongTeacher:
    """Acts in one ``make_env("ALE/Pong-v5")`` environment; call ``reset`` at each episode's start and
    ``act`` (or ``choose``) once per step, before stepping; a caller that plays another action than
    ``act``'s sets ``last_action`` to it (the late switches of ``sticky_delay`` start from it)."""

    def __init__(self, env, horizon: int = 4, steep_bonus: float = 0.3, braking: float = 1.0,
                 dead_band: float = 10.0, aim: float = 5.0, aim_with_ball: bool = False, sticky_delay: int = 0,
                 plan_until: int = 1):
        self.ale = env.unwrapped.ale
        self.buttons = self.ale.getMinimalActionSet()
        self.planner = ale_py.ALEInterface()
        self.planner.setLoggerMode(ale_py.LoggerMode.Error)
        self.planner.setFloat("repeat_action_probability", 0.0)
        self.planner.loadROM(roms.get_rom_path(ROM))  # the RAM addresses above are Pong's
        self.horizon, self.steep_bonus, self.braking, self.dead_band = horizon, steep_bonus, braking, dead_band
        # it plans while plan_until <= steps_left <= horizon: the ball bounces off the paddle in the frames
        # after it reaches the column, so 1 leaves the contact itself to the unplanned move and -1 plans it
        self.plan_until = plan_until
        self.aim = aim  # rows above the paddle's middle where it meets the ball
        self.aim_with_ball = aim_with_ball  # aim below the middle instead where the ball arrives moving up
        # a plan's outcome is averaged over each switch of action coming 0, 1, ... sticky_delay frames late
        self.delays = delay_chances(sticky_delay, env.unwrapped.ale.getFloat("repeat_action_probability"))
        self.previous, self.last_action = None, STAY

    def reset(self) -> None:
        self.previous, self.last_action = None, STAY

    def act(self) -> int:
        self.last_action = self.choose().action
        return self.last_action

    def choose(self) -> Choice:
        ram = self.ale.getRAM().astype(int)
        previous, self.previous = (ram if self.previous is None else self.previous), ram
        x, y, paddle = ram[BALL_X], ram[BALL_Y], ram[PADDLE_Y]
        dx, dy, speed = x - previous[BALL_X], y - previous[BALL_Y], paddle - previous[PADDLE_Y]
        met = meeting_row(x, y, dx, dy) if y and previous[BALL_Y] and dx < 20 else None
        row, direction = met or (None, 1)
        aim = self.aim * direction if self.aim_with_ball else self.aim
        target = REST_Y if row is None else row - PADDLE_TO_BALL + aim
        stops_at = paddle + self.braking * speed
        action = STAY if abs(stops_at - target) < self.dead_band else UP if stops_at > target else DOWN
        steps_left = int(np.ceil((PADDLE_COLUMN - x) / dx)) if row is not None else 0
        if row is not None and self.plan_until <= steps_left <= self.horizon:
            return self._plan(steps_left, action)
        return Choice(action, 1 << action, 1 << action, steps_left=steps_left)

    def _plan(self, steps_left: int, default: int) -> Choice:
        """Try ``a`` for ``j`` steps then ``b`` (a != b), and each action throughout; take the first action
        of the best, ``default`` when it is as good as any."""
        plans = [(a,) * j + (b,) for a in (STAY, UP, DOWN) for b in (STAY, UP, DOWN) if a != b
                 for j in range(1, steps_left + 1)] + [(a,) for a in (STAY, UP, DOWN)]
        start = self.ale.cloneState()
        ceiling = 1.0 + self.steep_bonus  # no outcome is better: a first action that reaches it needs no more tries
        scores, on_time = {}, {}  # first action -> the best outcome reachable from it, and with switches on time
        for plan in plans:
            if scores.get(plan[0], -1.0) < ceiling:
                score, score_on_time = self._outcome(start, plan, max(steps_left, 0) + 3)
                scores[plan[0]] = max(scores.get(plan[0], -1.0), score)
                on_time[plan[0]] = max(on_time.get(plan[0], -1.0), score_on_time)
        top = max(scores.values())
        best = sum(1 << a for a, score in scores.items() if score == top)
        returning = sum(1 << a for a, score in on_time.items() if score >= 1.0) | best
        action = default if scores[default] == top else next(a for a, score in scores.items() if score == top)
        return Choice(action, best, returning, critical=len(set(scores.values())) > 1, steps_left=steps_left)

    def _outcome(self, start, plan: tuple[int, ...], steps: int) -> tuple[float, float]:
        """The outcome of ``plan`` from the emulator state ``start`` (``_play``), averaged over its switches
        of action coming late by each of ``self.delays``, and its outcome with them all on time."""
        outcome = on_time = 0.0
        for delay, chance in self.delays:
            self.planner.restoreState(start)
            played = self._play(plan, steps, delay)
            outcome, on_time = outcome + chance * played, played if delay == 0 else on_time
        return outcome, on_time

    def _play(self, plan: tuple[int, ...], steps: int, delay: int) -> float:
        """Play ``plan`` (its last action repeated) for up to ``steps`` steps of 4 frames on the planner,
        each change of action (the first from ``last_action``) taking effect ``delay`` frames late:
        0 if the ball is missed, 1 if returned, 1 + steep_bonus if returned steeply, 0.5 if undecided."""
        ale = self.planner
        x_before = int(ale.getRAM()[BALL_X])
        pressed = self.buttons[self.last_action]
        for t in range(steps):
            button = self.buttons[plan[min(t, len(plan) - 1)]]
            reward = 0
            for frame in range(4):
                if frame >= delay:
                    pressed = button
                reward += ale.act(pressed)
            ram = ale.getRAM()
            x, y = int(ram[BALL_X]), int(ram[BALL_Y])
            if reward < 0 or y == 0:
                return 0.0
            if x < x_before:
                for _ in range(4):
                    ale.act(self.buttons[STAY])
                return 1.0 + self.steep_bonus * (abs(int(ale.getRAM()[BALL_Y]) - y) >= 7)
            x_before = x
        return 0.5


def delay_chances(most: int, sticky: float) -> tuple[tuple[int, float], ...]:
    """((delay, chance), ...): how many frames late a new action takes effect, 0 to ``most`` (``most`` standing
    for ``most`` or more), when each frame repeats the previous frame's action with chance ``sticky``
    (Gymnasium's v5 games: 0.25)."""
    return tuple((delay, (1 - sticky) * sticky ** delay) for delay in range(most)) + ((most, sticky ** most),)
