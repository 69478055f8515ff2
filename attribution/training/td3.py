"""TD3 (Fujimoto et al., 2018) for continuous actions: the actor-critic behind the shipped Pendulum policy.

PPO's Gaussian policy learns Pendulum slowly without state-dependent exploration; TD3 learns it in
tens of thousands of steps. The shipped model has the same heads as the PPO ones: "mean" (the
actor's deterministic action) and "value" (the critic's Q(s, mean(s)), the value of following the
actor from s). Run through ``python -m attribution.training.train Pendulum-v1``.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from attribution.rl.environments import make_env


@dataclasses.dataclass(frozen=True)
class TD3Config:
    total_steps: int = 30_000
    learning_starts: int = 1_000     # random actions first, to fill the replay buffer
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005               # target networks' soft-update rate
    learning_rate: float = 1e-3
    exploration_noise: float = 0.1   # fraction of the action bound
    policy_noise: float = 0.2        # target policy smoothing, fraction of the action bound
    noise_clip: float = 0.5
    policy_delay: int = 2
    hidden: tuple[int, ...] = (128, 128)


def _mlp(inputs, hidden, name):
    """tanh, not ReLU: a smooth network's path integral converges in few steps, a kinked one's does not."""
    x = inputs
    for i, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation="tanh", name=f"{name}_{i}")(x)
    return x


def build_actor(n_obs: int, action_high: np.ndarray, hidden) -> keras.Model:
    obs = keras.Input((n_obs,), name="normalized_observation")
    squashed = keras.layers.Dense(len(action_high), activation="tanh", name="actor_out")(_mlp(obs, hidden, "actor"))
    return keras.Model(
        obs, keras.layers.Rescaling(action_high.astype(np.float32), name="action_bound")(squashed), name="actor"
    )


def build_critic(n_obs: int, n_actions: int, hidden) -> keras.Model:
    obs, action = keras.Input((n_obs,), name="normalized_observation"), keras.Input((n_actions,), name="action")
    q = keras.layers.Dense(1, name="q")(_mlp(keras.layers.Concatenate()([obs, action]), hidden, "critic"))
    return keras.Model([obs, action], q, name="critic")


def shipped_model(actor, critic, mean: np.ndarray, var: np.ndarray) -> keras.Model:
    """Raw observations -> {"mean": actor action, "value": Q(s, actor action)}, normalisation folded in."""
    raw = keras.Input((len(mean),), name="observation")
    normalized = keras.layers.Normalization(mean=mean.astype(np.float32), variance=var.astype(np.float32),
                                            name="observation_normalization")(raw)
    action = actor(normalized)
    return keras.Model(raw, {"mean": action, "value": critic([normalized, action])}, name="policy")


def train_td3(env_id: str, seed: int, config: TD3Config):
    """Returns (shipped model, exploration log-std for sampled rollouts, steps trained)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    env = gym.wrappers.RecordEpisodeStatistics(make_env(env_id))
    env.action_space.seed(seed)
    n_obs, high = env.observation_space.shape[0], env.action_space.high.astype(np.float32)
    n_actions = len(high)
    # Observations are scaled by the space's bounds, fixed in advance (Pendulum's are finite).
    obs_mean, obs_var = (
        np.zeros(n_obs),
        np.square(np.where(np.isfinite(env.observation_space.high), env.observation_space.high, 1.0)),
    )
    scale = lambda o: ((o - obs_mean) / np.sqrt(obs_var)).astype(np.float32)  # noqa: E731

    actor, critics = (
        build_actor(n_obs, high, config.hidden),
        [build_critic(n_obs, n_actions, config.hidden) for _ in range(2)],
    )
    target_actor = build_actor(n_obs, high, config.hidden)
    target_critics = [build_critic(n_obs, n_actions, config.hidden) for _ in range(2)]
    for target, source in [(target_actor, actor), *zip(target_critics, critics, strict=True)]:
        target.set_weights(source.get_weights())
    actor_optimizer = keras.optimizers.Adam(config.learning_rate)
    critic_optimizer = keras.optimizers.Adam(config.learning_rate)
    critic_variables = critics[0].trainable_variables + critics[1].trainable_variables
    actor_optimizer.build(actor.trainable_variables)
    critic_optimizer.build(critic_variables)

    @tf.function
    def update_critics(obs, actions, rewards, next_obs, terminated):
        noise = tf.clip_by_value(tf.random.normal(tf.shape(actions)) * config.policy_noise * high,
                                 -config.noise_clip * high, config.noise_clip * high)
        next_actions = tf.clip_by_value(target_actor(next_obs) + noise, -high, high)
        next_q = tf.minimum(*(critic([next_obs, next_actions])[:, 0] for critic in target_critics))
        target = rewards + config.gamma * (1.0 - terminated) * next_q
        with tf.GradientTape() as tape:
            loss = sum(tf.reduce_mean((critic([obs, actions])[:, 0] - target) ** 2) for critic in critics)
        critic_optimizer.apply_gradients(zip(tape.gradient(loss, critic_variables), critic_variables, strict=True))
        return loss

    @tf.function
    def update_actor(obs):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(critics[0]([obs, actor(obs)]))
        actor_optimizer.apply_gradients(
            zip(tape.gradient(loss, actor.trainable_variables), actor.trainable_variables, strict=True)
        )
        for target, source in [(target_actor, actor), *zip(target_critics, critics, strict=True)]:
            for t, s in zip(target.variables, source.variables, strict=True):
                t.assign(config.tau * s + (1 - config.tau) * t)
        return loss

    act = tf.function(lambda obs: actor(obs))
    size = config.total_steps
    buffer = {"obs": np.zeros((size, n_obs), np.float32), "actions": np.zeros((size, n_actions), np.float32),
              "rewards": np.zeros(size, np.float32), "next_obs": np.zeros((size, n_obs), np.float32),
              "terminated": np.zeros(size, np.float32)}
    obs, _ = env.reset(seed=seed)
    returns, start, loss = [], time.time(), 0.0
    for step in range(config.total_steps):
        if step < config.learning_starts:
            action = env.action_space.sample()
        else:
            action = act(scale(obs)[None]).numpy()[0] + rng.normal(0, config.exploration_noise * high)
            action = np.clip(action, -high, high).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        for name, value in [("obs", scale(obs)), ("actions", action), ("rewards", reward),
                            ("next_obs", scale(next_obs)), ("terminated", float(terminated))]:
            buffer[name][step] = value
        obs = next_obs
        if terminated or truncated:
            returns.append(float(info["episode"]["r"]))
            obs, _ = env.reset()
        if step >= config.learning_starts:
            index = rng.integers(0, step + 1, config.batch_size)
            loss = update_critics(
                *(buffer[name][index] for name in ("obs", "actions", "rewards", "next_obs", "terminated"))
            )
            if step % config.policy_delay == 0:
                update_actor(buffer["obs"][index])
        if (step + 1) % (config.total_steps // 10) == 0:
            recent = f"{np.mean(returns[-10:]):8.1f}" if returns else "     n/a"
            print(f"{step + 1:>9,} steps  {(step + 1) / (time.time() - start):6.0f} steps/s  "
                  f"return(last 10) {recent}  critic loss {float(loss):.3f}", file=sys.stderr, flush=True)
    env.close()
    log_std = np.log(np.full(n_actions, config.exploration_noise) * high)
    return shipped_model(actor, critics[0], obs_mean, obs_var), log_std, config.total_steps
