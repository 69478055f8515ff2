"""What each first action is worth to the student itself, from rollouts on copies of the emulator.

The teacher of ``pong_teacher.py`` plans on the emulator's exact state, without sticky actions, and
much of what makes its returns steep (the paddle's momentum, which frame of four the paddle moves
on) is not on the screen: its student, which sees only frames, cannot follow it there. Near its
paddle, this asks the student's own question instead: from this state, with v5's sticky actions,
how often does the point end well if I take this action now and play on as I do? Each of
STAY, UP and DOWN is played ``per_action`` times on copies of the game (the emulator's state and the
four frames the student sees), the student acting greedily after it, until the point is decided
(1 won, 0 lost) or the computer returns the ball (``returned_value``, a new rally). Averaged over the
sticky actions' chances, these values teach the student what is best given what it can see
(approximate policy iteration; AggreVaTe, Ross and Bagnell 2014).
"""

from __future__ import annotations

import numpy as np

from attribution.rl.environments import make_env
from attribution.training.pong_teacher import BALL_X, BALL_Y, DOWN, STAY, UP

FIRST_ACTIONS = (STAY, UP, DOWN)


def _frame_stack(env):
    """The ``FrameStackObservation`` wrapper in ``env``'s chain (it holds the last frames)."""
    while not hasattr(env, "obs_queue"):
        env = env.env
    return env


def copy_state(source, target) -> None:
    """Put ``target`` (another ``make_env`` of the same game) in ``source``'s state: the emulator's and the
    frames the student sees."""
    target.unwrapped.ale.restoreState(source.unwrapped.ale.cloneState())
    stack = _frame_stack(target).obs_queue
    stack.clear()
    stack.extend(_frame_stack(source).obs_queue)


class RolloutCritic:
    """``values(env)`` -> (3,) the mean outcome of STAY, UP and DOWN from ``env``'s current state, which
    must have the ball coming towards the agent's paddle (a ball moving away counts as returned).
    ``act(observations)`` (n, 4, 84, 84) -> (n,) the student's greedy actions."""

    def __init__(self, env_id: str, act, per_action: int = 6, returned_value: float = 0.5,
                 max_steps: int = 150, seed: int = 0):
        self.act, self.per_action, self.returned_value, self.max_steps = act, per_action, returned_value, max_steps
        self.copies = [make_env(env_id) for _ in range(len(FIRST_ACTIONS) * per_action)]
        for index, copy in enumerate(self.copies):  # each copy's sticky actions draw from its own generator
            copy.reset(seed=seed * 1000 + index)

    def values(self, env) -> np.ndarray:
        n = len(self.copies)
        observations = np.zeros((n, *env.observation_space.shape), np.uint8)
        outcome = np.full(n, np.nan)
        returned = np.zeros(n, bool)
        ball_x = np.zeros(n, int)
        for copy in self.copies:
            copy_state(env, copy)
        ball_x[:] = int(env.unwrapped.ale.getRAM()[BALL_X])
        actions = np.repeat(FIRST_ACTIONS, self.per_action)
        for _ in range(self.max_steps):
            for i in np.flatnonzero(np.isnan(outcome)):
                observations[i], reward, terminated, truncated, _ = self.copies[i].step(int(actions[i]))
                ram = self.copies[i].unwrapped.ale.getRAM()
                x, visible = int(ram[BALL_X]), ram[BALL_Y] != 0
                if reward:
                    outcome[i] = float(reward > 0)
                elif terminated or truncated:
                    outcome[i] = self.returned_value
                elif visible and not returned[i] and x < ball_x[i]:
                    returned[i] = True      # the student returned the ball: it moves towards the computer
                elif visible and returned[i] and x > ball_x[i]:
                    outcome[i] = self.returned_value   # and the computer returned it
                ball_x[i] = x
            if not np.isnan(outcome).any():
                break
            actions = np.asarray(self.act(observations))
        outcome[np.isnan(outcome)] = self.returned_value
        return outcome.reshape(len(FIRST_ACTIONS), self.per_action).mean(1)
