"""Running a policy in its environment: the one episode loop that recording, replaying, forking,
evaluation, reference states and the Live page all step through.

    with EpisodeStepper("CartPole-v1", seed=0) as run:
        while not run.done:
            run.step(policy.act(run.observation))
    run.total_return, run.observations   # what happened

The stepper makes the environment with ``make_env`` (so every loop gets the wrappers the policy
needs), seeds it, renders it and closes it.
"""

from __future__ import annotations

import numpy as np

from attribution.rl.environments import make_env
from attribution.rl.episodes import Episode, Frames, as_action
from attribution.rl.history import ObservationHistory


class EpisodeStepper:
    """One environment, stepped episode by episode, and what happened in the current episode.

    observation: what the policy sees now, (*obs_shape,).
    observations (an ObservationHistory: a frame stack keeps one frame a step), actions, rewards,
    policy_outputs: one entry per recorded step (T).
    frames: Frames of the picture before each recorded step, when ``record_frames``.
    """

    def __init__(self, env_id: str, seed: int, render: bool = False, record_frames: bool = False):
        self.env_id, self.record_frames, self.closed = env_id, record_frames, False
        self.env = make_env(env_id, render_mode="rgb_array" if render or record_frames else None)
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Start a new episode seeded with ``seed``, forgetting the last one."""
        self.seed = int(seed)
        self.observe(self.env.reset(seed=self.seed)[0])
        self.observations, self.actions, self.rewards, self.policy_outputs = ObservationHistory(), [], [], []
        self.frames = Frames()
        self.terminated = self.truncated = False
        self.total_return = 0.0

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def t(self) -> int:
        """Steps recorded so far."""
        return len(self.actions)

    def observe(self, observation) -> None:
        """Make ``observation`` the current one (after a step, or a state written into the simulator)."""
        self.observation, self._frame = observation, None

    def frame(self) -> np.ndarray:
        """The picture of the current state, uint8 (H, W, 3), rendered once per state (a page that
        redraws without stepping gets it again for free)."""
        if self._frame is None:
            self._frame = self.env.render()
        return self._frame

    def step(self, action, policy_output=None) -> float:
        """Take ``action`` and record the step (``policy_output``: the actor head there, if kept).
        Returns the reward."""
        if self.done:
            raise ValueError(f"the episode ended after {self.t} steps; reset it before stepping again.")
        if self.record_frames:
            self.frames.append(self.frame())
        self.observations.append(self.observation)
        self.actions.append(action)
        if policy_output is not None:
            self.policy_outputs.append(policy_output)
        observation, reward, self.terminated, self.truncated, _ = self.env.step(action)
        self.observe(observation)
        self.rewards.append(float(reward))
        self.total_return += float(reward)
        return float(reward)

    def fast_forward(self, actions) -> None:
        """Take ``actions`` without recording them (the start of a fork, say), stopping if the episode ends."""
        for action in actions:
            if self.done:
                break
            observation, _, self.terminated, self.truncated, _ = self.env.step(as_action(action))
            self.observe(observation)

    def rewind(self, t: int) -> None:
        """Go back to step ``t`` of this episode (0 <= t <= self.t) by replaying its first ``t`` actions
        from its seed: the environment's state is not copied, only its seed and actions are kept."""
        if not 0 <= t <= self.t:
            raise ValueError(f"rewind needs a step from 0 to {self.t}; received {t}.")
        actions, outputs = self.actions[:t], self.policy_outputs[:t]
        self.reset(self.seed)
        for k, action in enumerate(actions):
            self.step(action, outputs[k] if k < len(outputs) else None)

    def episode(self, policy: str, greedy: bool) -> Episode:
        """The recorded steps as an Episode (``policy``: who played it, as episodes name it)."""
        obs_shape = np.shape(self.observation)
        images = self.env.observation_space.dtype == np.uint8  # 4 bytes a pixel would be 113 kB a Pong step
        return Episode(
            env_id=self.env_id, seed=self.seed, policy=policy, greedy=greedy,
            observations=self.observations.to_array(np.uint8 if images else np.float32).reshape(self.t, *obs_shape),
            actions=np.array(self.actions), rewards=np.array(self.rewards, dtype=np.float32),
            policy_outputs=np.array(self.policy_outputs, dtype=np.float32), terminated=bool(self.terminated),
            truncated=bool(self.truncated), frames=self.frames)

    def close(self) -> None:
        if not self.closed:
            self.env.close()
            self.closed = True

    def __enter__(self) -> EpisodeStepper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def actor_output(policy, observation) -> np.ndarray:
    """The policy's actor head (logits or mean) at one observation, (width,)."""
    return policy.heads(np.asarray(observation)[None])[policy.info.actor_head][0]


def play(run: EpisodeStepper, policy, greedy: bool = True, rng=None, max_steps: int | None = None,
         on_step=None) -> None:
    """Let ``policy`` play ``run`` until the episode ends or ``max_steps`` are recorded, keeping its outputs.

    Greedy takes the argmax (or the mean); otherwise actions are sampled from the policy's
    distribution with ``rng``. ``on_step(t)`` is called after each step.
    """
    while not run.done and (max_steps is None or run.t < max_steps):
        actor = actor_output(policy, run.observation)
        run.step(_choose(policy, actor, greedy, rng), actor)
        if on_step:
            on_step(run.t)


def play_ahead(run: EpisodeStepper, policy, count: int) -> list[np.ndarray]:
    """Let ``policy`` take up to ``count`` greedy steps of ``run`` (fewer if the episode ends); returns
    the picture of each state it acted in, uint8 (H, W, 3) each, for a player to show later."""
    frames = []
    while not run.done and len(frames) < count:
        frames.append(run.frame())
        run.step(policy.act(run.observation))
    return frames


def record_episode(policy, seed: int, greedy: bool = True, render: bool = True, max_steps: int | None = None,
                   on_step=None, actions=None) -> Episode:
    """Run ``policy`` in a fresh environment reset with ``seed`` until the episode ends (or ``max_steps``).

    Greedy takes the argmax (or the mean); otherwise actions are sampled from the policy's
    distribution with a generator seeded by ``seed``. ``on_step(t)`` is called after each step.
    ``actions`` replays those actions instead (an episode played elsewhere, rebuilt with its frames).
    """
    with EpisodeStepper(policy.info.env_id, seed, record_frames=render) as run:
        if actions is None:
            play(run, policy, greedy, np.random.default_rng(seed), max_steps, on_step)
        else:
            for action in list(actions)[:max_steps]:
                if run.done:
                    break
                run.step(as_action(action), actor_output(policy, run.observation))
                if on_step:
                    on_step(run.t)
        return run.episode(policy.info.source, greedy)


def replay_observations(episode: Episode) -> np.ndarray:
    """Step a fresh environment with the episode's seed and actions: the observations it sees,
    float32 (T, *obs_shape). Equal to ``episode.observations`` when the environment is deterministic."""
    with EpisodeStepper(episode.env_id, episode.seed) as run:
        for action in episode.actions:
            run.step(as_action(action))
        return np.array(run.observations, dtype=np.float32).reshape(episode.observations.shape)


def greedy_rollouts(policy, env_id: str, episodes: int | None = None, max_steps: int | None = None,
                    first_seed: int = 0, keep_every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The greedy policy over episodes seeded ``first_seed``, ``first_seed + 1``, ...: their returns
    (complete episodes only) and every ``keep_every``-th observation seen, float32 (T, *obs_shape).

    Stops after ``episodes`` episodes, or once ``max_steps`` observations are kept.
    ``policy`` is anything with ``act(observation)``.
    """
    if episodes is None and max_steps is None:
        raise ValueError("give greedy_rollouts a number of episodes, a number of steps, or both.")
    returns, states, seen = [], [], 0
    with EpisodeStepper(env_id, first_seed) as run:
        while (episodes is None or len(returns) < episodes) and (max_steps is None or len(states) < max_steps):
            if seen % keep_every == 0:
                states.append(run.observation)
            seen += 1
            run.step(policy.act(run.observation))
            run.observations.clear()  # kept above, every keep_every-th only
            if run.done:
                returns.append(run.total_return)
                run.reset(first_seed + len(returns))
    return np.array(returns), np.array(states, dtype=np.float32)


def _choose(policy, actor: np.ndarray, greedy: bool, rng):
    if greedy:
        return policy.greedy(actor)
    if policy.info.continuous:
        log_std = np.asarray(policy.info.action_log_std or np.zeros_like(actor))
        return policy.greedy(actor + np.exp(log_std) * rng.standard_normal(actor.shape))  # clipped to the bounds
    probabilities = np.exp(actor - actor.max())
    return int(rng.choice(len(actor), p=probabilities / probabilities.sum()))
