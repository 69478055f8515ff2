"""DAgger from a rule-based driver: how the shipped driving policy was trained.

The teacher (``careful_driver``) is a few rules on the observation itself: keep a gap to the car
ahead that grows with the speed it is closing at; when the gap is short, move to a free lane (right
first) or slow down; keep right when the right lane is free; speed up on an open road. It crashed
in 2 of 80 test episodes. Each round plays ``total_steps / rounds`` steps, the teacher acting in
round 0 and the student after that (the teacher's action taken instead with probability
``teacher_share ** round``); the teacher labels every state, and the student, a 256-256 MLP, is
trained on all the states seen so far (dataset aggregation: it learns what to do in the states its
own mistakes lead to). A value head learns the discounted return from each state. The network
takes raw observations (metres, metres per second): its first layers scale each feature column by a
fixed range and clip to [-1, 1], as highway-env's own normalisation does. Run through
``python -m attribution.training.train``.

Why not DQN, as highway-env's documentation trains it: on this CPU, 20,000 to 40,000 steps of it
(with and without a penalty for crashing) crashed in 26% to 52% of 50 test episodes; the teacher
crashes in about 2.5% of its episodes, and its student here in 4%.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from attribution.rl.environments import make_env
from attribution.rl.highway import LANE_WIDTH, PRESENT, VX, X, Y
from attribution.training.ppo import gae

LEFT, IDLE, RIGHT, FASTER, SLOWER = range(5)  # highway-env's meta-actions
RIGHTMOST_LANE = 2 * LANE_WIDTH               # the ego car's y in the third of three lanes


@dataclasses.dataclass(frozen=True)
class DAggerConfig:
    total_steps: int = 24_000          # agent steps over all rounds
    rounds: int = 6
    teacher_share: float = 0.5         # round k takes the teacher's action with probability teacher_share ** k
    epochs: int = 15                   # passes over all the states so far, per round
    minibatch: int = 128
    learning_rate: float = 1e-3
    gamma: float = 0.9                 # the value head's discount
    hidden: tuple[int, ...] = (256, 256)
    feature_ranges: tuple[float, ...] = (1.0, 200.0, 12.0, 80.0, 80.0)  # per column: the value scaled to 1
    safe_time: float = 2.5             # teacher: seconds of closing speed, doubled, added to its gap
    min_gap: float = 15.0              # teacher: metres to the car ahead in any case


def careful_driver(observation: np.ndarray, config: DAggerConfig) -> int:
    """The teacher's action for one observation (5 vehicles, 5 features), see the module's docstring."""
    table = np.asarray(observation, dtype=float)
    ego, others = table[0], table[1:][table[1:, PRESENT] > 0.5]

    def in_lane(low: float, high: float) -> np.ndarray:
        return others[(others[:, Y] > low) & (others[:, Y] < high)]

    ahead = in_lane(-LANE_WIDTH / 2, LANE_WIDTH / 2)
    ahead = ahead[ahead[:, X] > 0]
    front = ahead[:, X].min() if len(ahead) else np.inf
    closing = max(-ahead[np.argmin(ahead[:, X]), VX], 0.0) if len(ahead) else 0.0
    needed = config.min_gap + 2 * closing * config.safe_time
    right = in_lane(LANE_WIDTH / 2, 1.5 * LANE_WIDTH)
    if front < needed:
        left = in_lane(-1.5 * LANE_WIDTH, -LANE_WIDTH / 2)
        for action, lane, exists in ((RIGHT, right, ego[Y] < RIGHTMOST_LANE - 1), (LEFT, left, ego[Y] > 1)):
            if exists and np.all((lane[:, X] > front + 5) | (lane[:, X] < -12)):
                return action
        return SLOWER
    if ego[Y] < RIGHTMOST_LANE - 1 and np.all((right[:, X] > 30) | (right[:, X] < -15)):
        return RIGHT
    if front > needed + 20 and ego[VX] < 29:
        return FASTER
    return IDLE


def build_student(obs_shape: tuple[int, ...], n_actions: int, config: DAggerConfig) -> keras.Model:
    """raw observations (batch, *obs_shape) -> {"logits": (batch, n_actions), "value": (batch, 1)}."""
    observations = keras.Input(obs_shape, name="observation")
    ranges = np.asarray(config.feature_ranges, np.float32)
    x = keras.layers.Normalization(axis=-1, mean=np.zeros_like(ranges), variance=ranges**2)(observations)
    # clip to [-1, 1] with built-in layers only: relu(x + 1, max 2) - 1
    x = keras.layers.Rescaling(1.0, offset=-1.0)(keras.layers.ReLU(max_value=2.0)(
        keras.layers.Rescaling(1.0, offset=1.0)(x)))
    x = keras.layers.Flatten()(x)
    for width in config.hidden:
        x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(observations, {"logits": keras.layers.Dense(n_actions, name="logits")(x),
                                      "value": keras.layers.Dense(1, name="value")(x)})


def train_dagger(env_id: str, seed: int, config: DAggerConfig):
    """Train; returns (model, None, agent steps)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    env = make_env(env_id)
    observation, _ = env.reset(seed=seed)
    model = build_student(observation.shape, int(env.action_space.n), config)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    per_round = config.total_steps // config.rounds
    states = np.zeros((per_round * config.rounds, *observation.shape), np.float32)
    labels = np.zeros(len(states), np.int32)
    value_targets = np.zeros(len(states), np.float32)

    @tf.function(jit_compile=True)
    def act(obs):
        return tf.argmax(model(obs)["logits"], axis=1)

    @tf.function(jit_compile=True)
    def update(obs, label, value_target):
        with tf.GradientTape() as tape:
            out = model(obs, training=True)
            policy_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(label, out["logits"]))
            value_loss = tf.reduce_mean((out["value"][:, 0] - value_target) ** 2)
            loss = policy_loss + 0.5 * value_loss
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return policy_loss, value_loss

    filled, start, losses = 0, time.time(), (np.nan, np.nan)
    for round_index in range(config.rounds):
        share = config.teacher_share ** round_index
        rewards, ended = np.zeros(per_round, np.float32), np.zeros(per_round, np.float32)
        crashes, episodes, agreed = 0, 0, 0
        for t in range(per_round):
            teacher = careful_driver(observation, config)
            student = int(act(observation[None].astype(np.float32))[0])
            agreed += teacher == student
            states[filled + t], labels[filled + t] = observation, teacher
            observation, rewards[t], terminated, truncated, _ = env.step(teacher if rng.random() < share else student)
            if terminated or truncated:
                ended[t], crashes, episodes = 1.0, crashes + terminated, episodes + 1
                observation, _ = env.reset(seed=int(rng.integers(2**31)))
        # each state's discounted return in this round's episodes (the last one's cut short counts as ended)
        ended[-1] = 1.0
        returns = gae({"rewards": rewards[:, None], "values": np.zeros((per_round, 1), np.float32),
                       "dones": ended[:, None]}, np.zeros(1, np.float32), config.gamma, 1.0)[:, 0]
        value_targets[filled:filled + per_round] = returns
        filled += per_round
        for _ in range(config.epochs):
            order = rng.permutation(filled)
            for begin in range(0, filled, config.minibatch):
                index = order[begin:begin + config.minibatch]
                losses = update(states[index], labels[index], value_targets[index])
        print(f"round {round_index + 1}/{config.rounds}: {filled:,} states, teacher acting {share:.0%}, the student "
              f"agreed with it on {agreed / per_round:.0%}, {crashes} of {episodes} episodes crashed, losses "
              f"{float(losses[0]):.3f} / {float(losses[1]):.3f}, {(time.time() - start) / 60:.1f} min",
              file=sys.stderr, flush=True)
    env.close()
    return model, None, filled
