"""Fork an episode: from one of its steps, put the environment in an edited state (or take another
action) and let the policy play on from there, for a side-by-side with what really happened.

The environment reaches the fork step by replaying the episode's seed and actions (exact for
deterministic environments). An edited state is written into the simulator, which only the
classic-control environments allow: LunarLander's Box2D bodies cannot be rebuilt from an
observation. Those environments can still fork by taking another action.
"""

from __future__ import annotations

import math

import numpy as np

from attribution.rl.episodes import Episode, as_action
from attribution.rl.rollout import EpisodeStepper, actor_output, play


def _angles(observation, pairs, rates):
    """Simulator state from (cos, sin) pairs and angular rates."""
    return np.array([math.atan2(observation[s], observation[c]) for c, s in pairs] + [observation[i] for i in rates])


def _state_is_observation(env) -> np.ndarray:
    return np.array(env.state, dtype=np.float32)


# env id -> (observation (float64) -> the simulator's ``state``, unwrapped env -> its observation)
STATE_FROM_OBSERVATION = {
    "CartPole-v0": (np.array, _state_is_observation), "CartPole-v1": (np.array, _state_is_observation),
    "MountainCar-v0": (np.array, _state_is_observation), "MountainCarContinuous-v0": (np.array, _state_is_observation),
    "Pendulum-v1": (lambda o: _angles(o, [(0, 1)], [2]), lambda env: env._get_obs()),
    "Acrobot-v1": (lambda o: _angles(o, [(0, 1), (2, 3)], [4, 5]), lambda env: env._get_ob()),
}


def can_edit_state(env_id: str) -> bool:
    return env_id in STATE_FROM_OBSERVATION


def fork_episode(policy, episode: Episode, step: int, observation=None, action=None) -> Episode:
    """The policy's greedy play from ``step`` of ``episode`` onward, after an edit.

    Args:
        observation: the edited state at ``step`` (environments where ``can_edit_state``), or
        action: the action to take at ``step`` instead of the recorded one.
    Returns an Episode whose step 0 is the fork point (its length is what the fork lasted, up to
    the environment's time limit counted from the episode's start).
    """
    if (observation is None) == (action is None):
        raise ValueError("fork with either an edited observation or another action, not both or neither.")
    if not 0 <= step < len(episode):
        raise ValueError(f"the fork step must be between 0 and {len(episode) - 1}; received {step}.")
    if observation is not None and not can_edit_state(episode.env_id):
        raise ValueError(f"{episode.env_id}'s simulator state cannot be set from an observation; "
                         f"fork it with another action. States can be edited in: {', '.join(STATE_FROM_OBSERVATION)}.")
    with EpisodeStepper(episode.env_id, episode.seed, record_frames=True) as run:
        run.fast_forward(episode.actions[:step])
        if run.done:
            raise ValueError(f"replaying the episode's actions ended it before step {step}: this environment does "
                             "not replay the recording exactly here, so it cannot be forked there.")
        if observation is not None:
            edited = np.asarray(observation, dtype=np.float64).reshape(np.shape(run.observation))
            if not np.isfinite(edited).all():
                raise ValueError(f"the edited state must be finite numbers; received {edited.tolist()}.")
            to_state, read_observation = STATE_FROM_OBSERVATION[episode.env_id]
            run.env.unwrapped.state = to_state(edited)
            run.observe(np.asarray(read_observation(run.env.unwrapped), dtype=np.float32))
        else:
            run.step(as_action(action), actor_output(policy, run.observation))
        play(run, policy)
        return run.episode(episode.policy, greedy=True)
