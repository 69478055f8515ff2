"""DQN with a Keras Q-network: how the shipped driving policy was trained.

The settings follow highway-env's own documentation for ``highway-fast-v0`` (a 256-256 MLP,
gamma 0.8, a target network updated every 50 steps, epsilon decaying over 70% of training).
The network takes the environment's raw observations (metres, metres per second): its first layers
scale each feature column by a fixed range and clip to [-1, 1], as highway-env's own normalisation
does, so attributions come out in the environment's units. Run through
``python -m attribution.training.train``.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from attribution.rl.environments import make_env


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    total_steps: int = 20_000
    hidden: tuple[int, ...] = (256, 256)
    learning_rate: float = 5e-4
    buffer_size: int = 15_000
    learning_starts: int = 200
    batch_size: int = 32
    gamma: float = 0.8
    target_update: int = 50          # steps between copies of the network into the target network
    exploration_fraction: float = 0.7
    final_epsilon: float = 0.05
    feature_ranges: tuple[float, ...] = ()  # per feature column: the value scaled to 1 (then clipped); () none
    crash_penalty: float = 0.0       # taken off the reward of a step that ends the episode by terminating


def build_q_network(obs_shape: tuple[int, ...], n_actions: int, config: DQNConfig) -> keras.Model:
    """raw observations (batch, *obs_shape) -> {"q_values": (batch, n_actions)}."""
    observations = keras.Input(obs_shape, name="observation")
    x = observations
    if config.feature_ranges:
        ranges = np.asarray(config.feature_ranges, np.float32)
        x = keras.layers.Normalization(axis=-1, mean=np.zeros_like(ranges), variance=ranges**2)(x)
        # clip to [-1, 1] with built-in layers only: relu(x + 1, max 2) - 1
        x = keras.layers.Rescaling(1.0, offset=-1.0)(keras.layers.ReLU(max_value=2.0)(
            keras.layers.Rescaling(1.0, offset=1.0)(x)))
    x = keras.layers.Flatten()(x)
    for width in config.hidden:
        x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(observations, {"q_values": keras.layers.Dense(n_actions, name="q_values")(x)})


def train_dqn(env_id: str, seed: int, config: DQNConfig):
    """Train; returns (model, None, steps)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    env = make_env(env_id)
    observation, _ = env.reset(seed=seed)
    n_actions = int(env.action_space.n)
    model = build_q_network(observation.shape, n_actions, config)
    target = build_q_network(observation.shape, n_actions, config)
    target.set_weights(model.get_weights())
    optimizer = keras.optimizers.Adam(config.learning_rate)
    buffer = {"obs": np.zeros((config.buffer_size, *observation.shape), np.float32),
              "next": np.zeros((config.buffer_size, *observation.shape), np.float32),
              "action": np.zeros(config.buffer_size, np.int32), "reward": np.zeros(config.buffer_size, np.float32),
              "terminal": np.zeros(config.buffer_size, np.float32)}

    @tf.function(jit_compile=True)
    def q_values(obs):
        return model(obs)["q_values"]

    @tf.function(jit_compile=True)
    def update(obs, action, reward, next_obs, terminal):
        best_next = tf.reduce_max(target(next_obs)["q_values"], axis=1)
        wanted = reward + config.gamma * (1.0 - terminal) * best_next
        with tf.GradientTape() as tape:
            chosen = tf.gather(model(obs)["q_values"], action, batch_dims=1)
            loss = tf.reduce_mean(tf.keras.losses.huber(wanted[:, None], chosen[:, None]))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    returns, crashes, running, start, loss = [], [], 0.0, time.time(), float("nan")
    for step in range(config.total_steps):
        epsilon = max(config.final_epsilon,
                      1.0 - step / (config.exploration_fraction * config.total_steps) * (1 - config.final_epsilon))
        if rng.random() < epsilon:
            action = int(rng.integers(n_actions))
        else:
            action = int(np.argmax(q_values(observation[None].astype(np.float32))[0]))
        next_observation, reward, terminated, truncated, _ = env.step(action)
        slot = step % config.buffer_size
        learnt = reward - config.crash_penalty * terminated
        for key, value in (("obs", observation), ("next", next_observation), ("action", action), ("reward", learnt),
                           ("terminal", float(terminated))):
            buffer[key][slot] = value
        running += reward
        observation = next_observation
        if terminated or truncated:
            returns.append(running)
            crashes.append(terminated)
            running = 0.0
            observation, _ = env.reset(seed=int(rng.integers(2**31)))
        if step >= config.learning_starts:
            index = rng.integers(min(step + 1, config.buffer_size), size=config.batch_size)
            loss = float(update(*(tf.constant(buffer[key][index]) for key in
                                  ("obs", "action", "reward", "next", "terminal"))))
        if step % config.target_update == 0:
            target.set_weights(model.get_weights())
        if (step + 1) % 1000 == 0:
            print(f"{step + 1:,} steps, epsilon {epsilon:.2f}, {len(returns)} episodes, last 20: return "
                  f"{np.mean(returns[-20:]):.1f}, crashed {np.mean(crashes[-20:]):.0%}, loss {loss:.4f}, "
                  f"{(step + 1) / (time.time() - start):.0f} steps/s", file=sys.stderr, flush=True)
    env.close()
    return model, None, config.total_steps
