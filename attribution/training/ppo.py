"""PPO with an actor-critic in Keras: how the shipped discrete-action policies were trained.

One readable loop in the style of CleanRL's ``ppo.py``: a typed config, an environment factory,
explicit seeding. Observations (and, where the config says so, rewards) are normalised by running
statistics during training; the shipped model folds the observation normalisation into its first
layer, so it takes the raw observations the environment returns and attributions come out in the
environment's own units. Run through ``python -m attribution.training.train``.
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
class PPOConfig:
    total_steps: int = 1_000_000
    n_envs: int = 16
    n_steps: int = 1024             # per environment, per rollout
    minibatch_size: int = 64
    n_epochs: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    clip: float = 0.2
    entropy_coef: float = 0.0
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: tuple[int, ...] = (64, 64)
    normalize_reward: bool = False
    initial_log_std: float = 0.0    # continuous actions only


def env_factory(env_id: str, seed: int, index: int):
    """One training environment of the vector: the policy's own (``make_env``), counting returns."""
    def thunk():
        env = gym.wrappers.RecordEpisodeStatistics(make_env(env_id))
        env.action_space.seed(seed + index)
        return env
    return thunk


class RunningMeanStd:
    """Running mean and variance over a stream of batches (Chan et al.'s parallel update)."""

    def __init__(self, shape=()):
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 1e-4

    def update(self, batch: np.ndarray) -> None:
        mean, var, count = batch.mean(axis=0), batch.var(axis=0), len(batch)
        delta, total = mean - self.mean, self.count + count
        self.mean = self.mean + delta * count / total
        self.var = (self.var * self.count + var * count + delta**2 * self.count * count / total) / total
        self.count = total


def build_actor_critic(n_obs: int, n_actions: int, continuous: bool, hidden: tuple[int, ...]) -> keras.Model:
    """Normalised observations (batch, n_obs) -> {"logits" or "mean": (batch, n_actions), "value": (batch, 1)}.
    Separate actor and critic trunks of tanh layers, orthogonal initialisation, as in PPO's reference code."""
    obs = keras.Input((n_obs,), name="normalized_observation")

    def trunk(name):
        x = obs
        for i, width in enumerate(hidden):
            x = keras.layers.Dense(
                width,
                activation="tanh",
                kernel_initializer=keras.initializers.Orthogonal(np.sqrt(2)),
                name=f"{name}_{i}",
            )(x)
        return x

    actor_head = "mean" if continuous else "logits"
    actor = keras.layers.Dense(n_actions, kernel_initializer=keras.initializers.Orthogonal(0.01), name=actor_head)(
        trunk("actor")
    )
    value = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(1.0), name="value")(trunk("critic"))
    return keras.Model(obs, {actor_head: actor, "value": value}, name="actor_critic")


def with_observation_normalization(network: keras.Model, mean: np.ndarray, var: np.ndarray) -> keras.Model:
    """The shipped model: raw observations -> the network's heads, normalisation folded in."""
    raw = keras.Input(network.inputs[0].shape[1:], name="observation")
    normalized = keras.layers.Normalization(mean=mean.astype(np.float32), variance=var.astype(np.float32) + 1e-8,
                                            name="observation_normalization")(raw)
    return keras.Model(raw, network(normalized), name="policy")


def train_ppo(env_id: str, seed: int, config: PPOConfig, checkpoints=None):
    """Returns (shipped model, log_std or None, steps trained). ``checkpoints(steps, shipped)``,
    if given, is called after every update; ``shipped()`` gives (model, log_std) as they would be shipped then."""
    keras.utils.set_random_seed(seed)
    envs = gym.vector.SyncVectorEnv([env_factory(env_id, seed, i) for i in range(config.n_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    continuous = isinstance(envs.single_action_space, gym.spaces.Box)
    n_obs = envs.single_observation_space.shape[0]
    n_actions = envs.single_action_space.shape[0] if continuous else int(envs.single_action_space.n)
    network = build_actor_critic(n_obs, n_actions, continuous, config.hidden)
    log_std = tf.Variable(np.full(n_actions, config.initial_log_std, np.float32)) if continuous else None
    variables = network.trainable_variables + ([log_std] if continuous else [])
    optimizer = keras.optimizers.Adam(config.learning_rate, epsilon=1e-5, global_clipnorm=config.max_grad_norm)
    optimizer.build(variables)
    low, high = (envs.single_action_space.low, envs.single_action_space.high) if continuous else (None, None)

    def log_prob_entropy(heads, actions):
        if continuous:
            std = tf.exp(log_std)
            log_prob = tf.reduce_sum(
                -0.5 * ((actions - heads["mean"]) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi), axis=1
            )
            return log_prob, tf.reduce_sum(log_std + 0.5 * np.log(2 * np.pi * np.e)) * tf.ones_like(log_prob)
        log_p = tf.nn.log_softmax(heads["logits"])
        log_prob = tf.gather(log_p, tf.cast(actions, tf.int32), batch_dims=1)
        return log_prob, -tf.reduce_sum(tf.exp(log_p) * log_p, axis=1)

    @tf.function(reduce_retracing=True)
    def act(obs):
        heads = network(obs)
        if continuous:
            actions = heads["mean"] + tf.exp(log_std) * tf.random.normal(tf.shape(heads["mean"]))
        else:
            actions = tf.random.categorical(heads["logits"], 1)[:, 0]
        log_prob, _ = log_prob_entropy(heads, tf.cast(actions, tf.float32) if continuous else actions)
        return actions, log_prob, heads["value"][:, 0]

    @tf.function(reduce_retracing=True)
    def value_of(obs):
        return network(obs)["value"][:, 0]

    @tf.function(reduce_retracing=True)
    def update(obs, actions, old_log_prob, advantages, returns, learning_rate):
        optimizer.learning_rate.assign(learning_rate)
        with tf.GradientTape() as tape:
            heads = network(obs, training=True)
            log_prob, entropy = log_prob_entropy(heads, actions)
            policy_loss = clipped_surrogate_loss(log_prob, old_log_prob, advantages, config.clip)
            value_loss = 0.5 * tf.reduce_mean((heads["value"][:, 0] - returns) ** 2)
            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * tf.reduce_mean(entropy)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return policy_loss, value_loss, tf.reduce_mean(entropy)

    obs_stats, return_stats = RunningMeanStd((n_obs,)), RunningMeanStd()
    discounted = np.zeros(config.n_envs)

    def normalize(obs):
        return ((obs - obs_stats.mean) / np.sqrt(obs_stats.var + 1e-8)).astype(np.float32)

    batch = config.n_envs * config.n_steps
    n_updates = max(1, config.total_steps // batch)
    buffers = {name: np.zeros((config.n_steps, config.n_envs) + shape, np.float32) for name, shape in
               [("obs", (n_obs,)), ("actions", (n_actions,) if continuous else ()), ("log_prob", ()),
                ("rewards", ()), ("dones", ()), ("values", ())]}
    raw_obs, _ = envs.reset(seed=seed)
    obs_stats.update(raw_obs)
    recent_returns, start = [], time.time()
    for update_index in range(n_updates):
        for t in range(config.n_steps):
            obs = normalize(raw_obs)
            actions, log_prob, values = (v.numpy() for v in act(obs))
            env_actions = np.clip(actions, low, high) if continuous else actions
            raw_obs, rewards, terminated, truncated, infos = envs.step(env_actions)
            obs_stats.update(raw_obs)
            rewards = rewards.astype(np.float64)
            if truncated.any():  # bootstrap through a time limit: the episode did not really end
                final = np.stack([infos["final_obs"][i] if truncated[i] else raw_obs[i] for i in range(config.n_envs)])
                rewards = rewards + config.gamma * truncated * value_of(normalize(final)).numpy() * (
                    np.sqrt(return_stats.var + 1e-8) if config.normalize_reward else 1.0)
            if config.normalize_reward:
                discounted = discounted * config.gamma * (1 - (terminated | truncated)) + rewards
                return_stats.update(discounted)
                rewards = np.clip(rewards / np.sqrt(return_stats.var + 1e-8), -10, 10)
            for name, value in [("obs", obs), ("actions", actions), ("log_prob", log_prob), ("rewards", rewards),
                                ("dones", terminated | truncated), ("values", values)]:
                buffers[name][t] = value
            if "final_info" in infos and "episode" in infos["final_info"]:
                finished = infos["final_info"]
                recent_returns.extend(finished["episode"]["r"][finished["_episode"]].tolist())
        advantages = gae(buffers, value_of(normalize(raw_obs)).numpy(), config.gamma, config.gae_lambda)
        returns = advantages + buffers["values"]
        flat = {name: array.reshape(batch, *array.shape[2:]) for name, array in buffers.items()}
        flat_advantages, flat_returns = advantages.reshape(-1), returns.reshape(-1)
        learning_rate = config.learning_rate * (1 - update_index / n_updates if config.anneal_lr else 1.0)
        for _ in range(config.n_epochs):
            order = np.random.permutation(batch)
            for i in range(0, batch - config.minibatch_size + 1, config.minibatch_size):
                mb = order[i:i + config.minibatch_size]
                losses = update(flat["obs"][mb], flat["actions"][mb], flat["log_prob"][mb], flat_advantages[mb],
                                flat_returns[mb], np.float32(learning_rate))
        recent_returns = recent_returns[-100:]
        progress_line(update_index + 1, n_updates, (update_index + 1) * batch, start, recent_returns, losses)
        if checkpoints:
            checkpoints((update_index + 1) * batch, lambda: (
                with_observation_normalization(network, obs_stats.mean, obs_stats.var),
                None if log_std is None else log_std.numpy()))
    envs.close()
    model = with_observation_normalization(network, obs_stats.mean, obs_stats.var)
    return model, (None if log_std is None else log_std.numpy()), n_updates * batch


def clipped_surrogate_loss(log_prob, old_log_prob, advantages, clip: float):
    """(batch,) each -> (): minus PPO's clipped surrogate objective, the advantages normalised within the
    minibatch. A ratio of new to old probability beyond 1 +- ``clip`` in the advantage's direction adds no
    gradient, so one rollout cannot move the policy far."""
    advantages = (advantages - tf.reduce_mean(advantages)) / (tf.math.reduce_std(advantages) + 1e-8)
    ratio = tf.exp(log_prob - old_log_prob)
    return -tf.reduce_mean(tf.minimum(ratio * advantages, tf.clip_by_value(ratio, 1 - clip, 1 + clip) * advantages))


def gae(buffers, last_values, gamma, lam) -> np.ndarray:
    """Generalised advantage estimates, (n_steps, n_envs). ``dones[t]`` marks that step t ended an
    episode, so no value flows back into it from step t + 1."""
    rewards, values, dones = buffers["rewards"], buffers["values"], buffers["dones"]
    advantages, running = np.zeros_like(rewards), np.zeros(rewards.shape[1], np.float32)
    for t in reversed(range(len(rewards))):
        next_values = last_values if t == len(rewards) - 1 else values[t + 1]
        delta = rewards[t] + gamma * next_values * (1 - dones[t]) - values[t]
        running = delta + gamma * lam * (1 - dones[t]) * running
        advantages[t] = running
    return advantages


def progress_line(done, total, steps, start, returns, losses):
    """A progress bar: redrawn in place on a terminal, one line per tenth of the run in a log."""
    width = 30
    filled = int(width * done / total)
    mean_return = f"{np.mean(returns):8.1f}" if returns else "     n/a"
    line = (f"[{'#' * filled}{'.' * (width - filled)}] {steps:>9,} steps  {steps / (time.time() - start):6.0f} steps/s"
            f"  return(last 100) {mean_return}  policy loss {float(losses[0]):+.3f}  value loss {float(losses[1]):.3f}")
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line + ("\n" if done == total else ""))
    elif done == total or done % max(1, total // 10) == 0:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
