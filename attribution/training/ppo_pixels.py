"""PPO from pixels for Atari, in the style of CleanRL's ``ppo_atari.py``: how the shipped Pong policy was trained.

The policy is a small CNN (the 2013 DQN network: 16 8x8 filters, 32 4x4, 256 units) on the raw
stacked frames, with a policy and a value head. Rollouts come from ale-py's vector environment,
which runs the same pipeline as ``make_env`` (frame skip 4 with the max of the last two frames,
84x84 grayscale, a stack of 4, up to 30 no-ops, v5's sticky actions 0.25) in C++ threads: about
14 times faster than stepping the Python wrappers, so the two CPU cores go to the network. The
trained model is evaluated in ``make_env``'s environment. Run through ``python -m attribution.training.train``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from attribution.rl.pong import ball_columns
from attribution.training.ppo import gae


@dataclasses.dataclass(frozen=True)
class PixelPPOConfig:
    total_steps: int = 2_000_000        # agent steps, all environments together (4 frames each)
    n_envs: int = 16
    n_steps: int = 128
    n_minibatches: int = 4
    n_epochs: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    learning_rate: float = 2.5e-4
    clip: float = 0.1
    entropy_coef: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    conv: tuple[tuple[int, int, int], ...] = ((16, 8, 4), (32, 4, 2))   # (filters, kernel, stride)
    hidden: int = 256
    checkpoint: str = ""                # a .keras path the latest model is written to every 50 updates
    initial_model: str = ""             # a .keras file to start from (a checkpoint), instead of random weights
    stop_after: int = 0                 # stop after this many steps (the learning rate still anneals over total_steps)
    hit_bonus: float = 0.0              # Pong: a reward for returning the ball (see returned_balls)


def build_pixel_actor_critic(obs_shape: tuple[int, ...], n_actions: int, config: PixelPPOConfig) -> keras.Model:
    """raw frames (batch, frames, 84, 84) as float -> {"logits": (batch, n_actions), "value": (batch, 1)}."""
    frames = keras.Input(obs_shape, name="observation")
    x = keras.layers.Permute((2, 3, 1))(keras.layers.Rescaling(1 / 255)(frames))  # channels last, fastest on CPU
    for filters, kernel, stride in config.conv:
        x = keras.layers.Conv2D(filters, kernel, stride, activation="relu",
                                kernel_initializer=keras.initializers.Orthogonal(np.sqrt(2)))(x)
    x = keras.layers.Dense(config.hidden, activation="relu",
                           kernel_initializer=keras.initializers.Orthogonal(np.sqrt(2)))(keras.layers.Flatten()(x))
    logits = keras.layers.Dense(n_actions, name="logits", kernel_initializer=keras.initializers.Orthogonal(0.01))(x)
    value = keras.layers.Dense(1, name="value", kernel_initializer=keras.initializers.Orthogonal(1.0))(x)
    return keras.Model(frames, {"logits": logits, "value": value})


def vector_env(env_id: str, n_envs: int, seed: int):
    """ale-py's threaded vector environment with ``make_env``'s pipeline for an ``ALE/Game-v5`` id."""
    from ale_py.vector_env import AtariVectorEnv

    game = env_id.split("/")[-1].split("-")[0].lower()
    env = AtariVectorEnv(game=game, num_envs=n_envs, frameskip=4, maxpool=True, grayscale=True, stack_num=4,
                         img_height=84, img_width=84, noop_max=30, repeat_action_probability=0.25,
                         episodic_life=False, reward_clipping=False, use_fire_reset=False)
    return env, env.reset(seed=seed)[0]


HIT_COLUMN = 60  # a ball that turns back from the right of this column (84 wide) was returned by the agent's paddle


def returned_balls(observations, moving_before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pong: which environments' agent just returned the ball, from the last two stacked frames.

    The points alone are sparse (one every hundred steps or so, and at first always lost), so a
    small bonus for each return (``hit_bonus``) tells the agent early what a good action is; the
    shipped policy is evaluated on the score alone. ``moving_before``: the ball's last known
    horizontal motion (right positive). Returns (returned bool (n_envs,), its last known motion now):
    a ball hidden in the paddle's columns, or off the screen, keeps the motion it had.
    """
    columns = ball_columns(np.asarray(observations)[:, -2:])
    motion = columns[:, 1] - columns[:, 0]
    seen = ~np.isnan(motion) & (motion != 0)
    moving = np.where(seen, motion, moving_before)
    return (moving_before > 0) & (moving < 0) & (columns[:, 1] > HIT_COLUMN), moving


def train_ppo_pixels(env_id: str, seed: int, config: PixelPPOConfig):
    """Train; returns (model, None, agent steps)."""
    keras.utils.set_random_seed(seed)
    env, observation = vector_env(env_id, config.n_envs, seed)
    n_actions = int(env.single_action_space.n)
    model = build_pixel_actor_critic(tuple(observation.shape[1:]), n_actions, config)
    if config.initial_model:
        model.set_weights(keras.saving.load_model(config.initial_model, compile=False).get_weights())
    optimizer = keras.optimizers.Adam(config.learning_rate, epsilon=1e-5, clipnorm=None)
    batch = config.n_envs * config.n_steps
    minibatch = batch // config.n_minibatches
    updates = config.total_steps // batch
    last_update = min(updates, config.stop_after // batch) if config.stop_after else updates

    @tf.function(jit_compile=True)
    def act(obs, key):
        out = model(tf.cast(obs, tf.float32))
        action = tf.random.stateless_categorical(out["logits"], 1, key)[:, 0]
        log_p = tf.nn.log_softmax(out["logits"])
        return action, tf.gather(log_p, action, batch_dims=1), out["value"][:, 0]

    @tf.function(jit_compile=True)
    def value_of(obs):
        return model(tf.cast(obs, tf.float32))["value"][:, 0]

    # Not XLA: on a CPU, oneDNN's convolutions train faster (139 ms for a 512-state update against 214)
    @tf.function(jit_compile=False)
    def update(obs, actions, old_log_p, advantages, returns, lr):
        advantages = (advantages - tf.reduce_mean(advantages)) / (tf.math.reduce_std(advantages) + 1e-8)
        with tf.GradientTape() as tape:
            out = model(tf.cast(obs, tf.float32), training=True)
            log_p_all = tf.nn.log_softmax(out["logits"])
            log_p = tf.gather(log_p_all, actions, batch_dims=1)
            ratio = tf.exp(log_p - old_log_p)
            policy_loss = -tf.reduce_mean(tf.minimum(ratio * advantages,
                                                     tf.clip_by_value(ratio, 1 - config.clip, 1 + config.clip)
                                                     * advantages))
            value_loss = 0.5 * tf.reduce_mean((out["value"][:, 0] - returns) ** 2)
            entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(log_p_all) * log_p_all, axis=1))
            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, config.max_grad_norm)
        optimizer.learning_rate.assign(lr)
        optimizer.apply(grads, model.trainable_variables)
        return policy_loss, value_loss, entropy

    obs_buf = np.empty((config.n_steps, config.n_envs, *observation.shape[1:]), np.uint8)
    actions = np.empty((config.n_steps, config.n_envs), np.int64)
    log_ps = np.empty((config.n_steps, config.n_envs), np.float32)
    values = np.empty((config.n_steps + 1, config.n_envs), np.float32)
    rewards = np.empty((config.n_steps, config.n_envs), np.float32)
    dones = np.empty((config.n_steps, config.n_envs), np.float32)
    episode_returns, running = [], np.zeros(config.n_envs)
    done_now = np.zeros(config.n_envs, bool)
    moving, returns_made = np.zeros(config.n_envs), 0
    rng, start = np.random.default_rng(seed), time.time()
    for update_index in range(last_update):
        lr = config.learning_rate * (1 - update_index / updates)
        for t in range(config.n_steps):
            obs_buf[t] = observation
            key = tf.constant(rng.integers(0, 2**31, 2), tf.int32)
            action, log_p, value = (array.numpy() for array in act(observation, key))
            actions[t], log_ps[t], values[t] = action, log_p, value
            # the vector environment resets a finished episode on the step after it ends (that step's
            # reward is 0 and its transition is ignored through the done flag)
            observation, reward, terminated, truncated, _ = env.step(action)
            running += reward
            dones[t] = done_now
            rewards[t] = np.sign(reward) * ~done_now
            if config.hit_bonus:
                returned, moving = returned_balls(observation, moving)
                rewards[t] += config.hit_bonus * (returned & ~done_now)
                returns_made += int(returned.sum())
            done_now = terminated | truncated
            for i in np.flatnonzero(done_now):
                episode_returns.append(running[i])
                running[i] = 0.0
        values[-1] = value_of(observation).numpy()
        # step t ended an episode when the step after it was the reset (or, for the last step, now)
        ended = np.concatenate([dones[1:], done_now[None].astype(np.float32)])
        advantages = gae({"rewards": rewards, "values": values[:-1], "dones": ended}, values[-1],
                         config.gamma, config.gae_lambda)
        returns = advantages + values[:-1]
        flat = [array.reshape(batch, *array.shape[2:]) for array in (obs_buf, actions, log_ps, advantages, returns)]
        for _ in range(config.n_epochs):
            order = rng.permutation(batch)
            for first in range(0, batch, minibatch):
                index = np.sort(order[first:first + minibatch])
                losses = update(*(array[index] for array in flat), tf.constant(lr, tf.float32))
        if update_index % 10 == 0 or update_index == last_update - 1:
            steps = (update_index + 1) * batch
            recent = np.mean(episode_returns[-20:]) if episode_returns else float("nan")
            print(f"{steps:,} steps, {len(episode_returns)} episodes, mean return of the last 20 {recent:+.1f}, "
                  f"entropy {float(losses[2]):.2f}, {returns_made} balls returned, "
                  f"{steps / (time.time() - start):.0f} steps/s, "
                  f"{(time.time() - start) / 60:.1f} min", file=sys.stderr, flush=True)
        if config.checkpoint and update_index % 50 == 49:
            Path(config.checkpoint).parent.mkdir(parents=True, exist_ok=True)
            model.save(config.checkpoint)
    env.close()
    return model, None, last_update * batch
