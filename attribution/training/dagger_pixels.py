"""DAgger from pixels: how the shipped Pong policy was trained.

The student is a small CNN (``build_pixel_student``) that sees only the stacked frames of
``make_env``; the teacher (``pong_teacher.PongTeacher``) reads the emulator. Each round plays
``total_steps / rounds`` steps in ``workers`` processes, the teacher acting in round 0 and the
student after that (the teacher's action taken instead with probability ``teacher_share ** round``);
the teacher labels every state, and the student is trained on all the states seen so far, so it
learns what to do in the states its own mistakes lead to. A label is a set of actions (the
teacher's ``Choice``): the loss is the mean of -log P(an action in ``best``) and -log P(an action in
``returning``), so near the paddle the student may take any action as good as the teacher's, and one
that returns the ball before one that does not. The teacher's critical states (the ball near, its
first actions leading to different outcomes: where the student lost its points) weigh
``critical_weight`` times the others in that loss. A value head learns the discounted score from each
state. With ``critic_rollouts``, the states just before the ball arrives are labelled instead by the
student's own rollouts (``pong_rollouts.RolloutCritic``): the best action where it beats the student's
by ``critic_margin``, else the student's own. With ``branch_horizon``, in the last steps before the ball
arrives the states each other move (of stay, up, down) leads to are also labelled and learnt from: the
states one mistake away, where a student that seldom errs otherwise has few examples. With
``easy_keep`` < 1, only that share of the states that are not critical is kept (each weighing
``1 / easy_keep``, so the loss is the same in expectation): the critical ones are about 2% of the states,
and the time spent learning the others goes to playing more. Run through
``python -m attribution.training.train``.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from attribution.rl.environments import make_env
from attribution.training.pong_rollouts import FIRST_ACTIONS, RolloutCritic, copy_state
from attribution.training.pong_teacher import PongTeacher
from attribution.training.ppo import gae
from attribution.training.processes import exit_with_parent


@dataclasses.dataclass(frozen=True)
class PixelDAggerConfig:
    total_steps: int = 500_000         # agent steps over all rounds (4 frames each)
    rounds: int = 10
    teacher_share: float = 0.5         # round k takes the teacher's action with probability teacher_share ** k
    epochs: int = 4                    # passes over all the states so far, per round
    minibatch: int = 128
    learning_rate: float = 1e-3       # the first round's, falling geometrically to final_learning_rate in the last
    final_learning_rate: float = 1e-4
    critical_weight: float = 5.0       # the weight of a state where the teacher's first actions differ in outcome
    teacher_horizon: int = 4           # the teacher plans the last steps before the ball reaches its paddle
    teacher_aim: float = 7.0           # rows above its paddle's middle where the teacher meets the ball
    teacher_aim_with_ball: bool = True  # ... below the middle instead where the ball arrives moving up
    teacher_steep_bonus: float = 0.0   # how much more the teacher's planning values a steep return than a flat one
    teacher_dead_band: float = 14.0    # rows from its target within which the teacher's paddle stays still
    teacher_sticky_delay: int = 0      # > 0: its plans are scored over switches 0 to this many frames late
    teacher_plan_until: int = 1        # it plans down to this many steps before the ball reaches the paddle's column
                                       # (-1: also the contact itself, a step after; pong_teacher.PongTeacher)
    gamma: float = 0.99                # the value head's discount
    conv: tuple[tuple[int, int, int], ...] = ((16, 8, 4), (32, 4, 2))   # (filters, kernel, stride)
    hidden: int = 256
    workers: int = 2                   # processes that play (the teacher plans on a copy of the emulator)
    initial_model: str = ""            # a .keras policy to go on training, instead of random weights
    first_round: int = 0               # the teacher's share goes on from this round (when going on training)
    critic_rollouts: int = 0           # > 0: near the paddle, label by this many rollouts an action (pong_rollouts.py)
    critic_horizon: int = 5            # ... in this many last steps before the ball reaches the paddle
    critic_margin: float = 0.3         # ... where the best action's value beats the student's by this; else its own
    branch_horizon: int = 0            # > 0: in this many last steps before the ball arrives, also learn the states
                                       # the other moves lead to (at most a quarter as many as the states played)
    easy_keep: float = 1.0             # < 1: keep only this share of the states that are not critical, each weighing
                                       # 1 / easy_keep, so the same time learns from more critical states


def build_pixel_student(obs_shape: tuple[int, ...], n_actions: int, config: PixelDAggerConfig) -> keras.Model:
    """raw frames (batch, frames, 84, 84) as float -> {"logits": (batch, n_actions), "value": (batch, 1)}: the
    2013 DQN network (16 8x8 filters, 32 4x4, 256 units)."""
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


def set_cross_entropy(logits, allowed_bits):
    """logits (batch, n_actions), allowed_bits (batch, sets) uint8 bit masks (bit a: action a allowed) ->
    (batch,): the mean over sets of -log P(the action is in the set); one action per set is plain
    cross-entropy."""
    shifted = tf.bitwise.right_shift(tf.cast(allowed_bits, tf.int32)[:, :, None], tf.range(tf.shape(logits)[-1]))
    allowed = tf.bitwise.bitwise_and(shifted, 1) > 0   # (batch, sets, n_actions)
    logits = tf.broadcast_to(logits[:, None], tf.shape(allowed))
    log_p = tf.reduce_logsumexp(tf.where(allowed, logits, -np.inf), -1) - tf.reduce_logsumexp(logits, -1)
    return -tf.reduce_mean(log_p, -1)


SAME_MOVE = {1: 0, 4: 2, 5: 3}  # FIRE only serves, so fire, up and fire, down and fire move as stay, up, down


def _teacher(env, config: PixelDAggerConfig, horizon: int) -> PongTeacher:
    return PongTeacher(env, horizon=horizon, aim=config.teacher_aim, aim_with_ball=config.teacher_aim_with_ball,
                       steep_bonus=config.teacher_steep_bonus, dead_band=config.teacher_dead_band,
                       sticky_delay=config.teacher_sticky_delay, plan_until=config.teacher_plan_until)


class _Player:
    """One worker's environment, teacher and copy of the student; it keeps its episode across rounds."""

    def __init__(self, env_id: str, seed: int, config: PixelDAggerConfig):
        self.rng = np.random.default_rng(seed)
        self.env = make_env(env_id)
        # with a critic, the teacher only labels the states before the critic's, where it does not plan
        self.teacher = _teacher(self.env, config, horizon=0 if config.critic_rollouts else config.teacher_horizon)
        self.observation, _ = self.env.reset(seed=seed)
        self.model = build_pixel_student(self.observation.shape, int(self.env.action_space.n), config)
        self.act = tf.function(lambda obs: tf.argmax(self.model(tf.cast(obs, tf.float32))["logits"], axis=1),
                               jit_compile=True)
        self.score, self.gamma = 0.0, config.gamma
        self.critic = RolloutCritic(env_id, lambda obs: self.act(obs).numpy(), config.critic_rollouts, seed=seed) \
            if config.critic_rollouts else None
        self.critic_horizon, self.critic_margin = config.critic_horizon, config.critic_margin
        self.branch_horizon, self.easy_keep = config.branch_horizon, config.easy_keep
        if self.branch_horizon:
            self.branch = make_env(env_id)
            self.branch.reset(seed=seed + 1)
            self.branch_teacher = _teacher(self.branch, config, horizon=config.teacher_horizon)

    def _branches(self, taken: int) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        """The observations each move of stay, up and down other than ``taken`` leads to from this state,
        on a copy of the game, with the teacher's labels there."""
        branches = []
        for move in FIRST_ACTIONS:
            if move == SAME_MOVE.get(taken, taken):
                continue
            copy_state(self.env, self.branch)
            observation, _, terminated, truncated, _ = self.branch.step(move)
            if not (terminated or truncated):
                self.branch_teacher.previous, self.branch_teacher.last_action = self.teacher.previous, move
                choice = self.branch_teacher.choose()
                branches.append((observation, (choice.best, choice.returning, choice.critical)))
        return branches

    def _critic_label(self, student: int) -> tuple[int, int, bool]:
        """The critic's label for this state: its best actions where they beat the student's by the
        margin, else the student's own action; critical either way."""
        values = self.critic.values(self.env)
        own = values[FIRST_ACTIONS.index(SAME_MOVE.get(student, student))]
        if values.max() - own < self.critic_margin:
            return 1 << student, 1 << student, True
        best = sum(1 << a for a, value in zip(FIRST_ACTIONS, values, strict=True) if value == values.max())
        return best, best, True

    def play(self, weights, steps: int, share: float) -> dict:
        """``steps`` steps, the teacher's action taken with probability ``share``: the states (uint8),
        the teacher's labels, each state's discounted score and weight, finished games' scores, and how
        often the student's action was one of the teacher's best. With branches, the states the other
        moves lead to follow the states played (up to ``steps // 4`` of them), their returns NaN (not
        known). With ``easy_keep`` < 1, a state that is not critical is kept with that chance."""
        self.model.set_weights(weights)
        branch_room = steps // 4 if self.branch_horizon else 0
        states = np.zeros((steps + branch_room, *self.observation.shape), np.uint8)
        labels = np.zeros((len(states), 3), np.uint8)  # the teacher's best and returning actions as bit masks, critical
        rewards, ended = np.zeros(steps, np.float32), np.zeros(steps, np.float32)
        games, agreed, critical_agreed, branched = [], 0, 0, steps
        for t in range(steps):
            choice = self.teacher.choose()
            student = int(self.act(self.observation[None])[0])
            states[t], labels[t] = self.observation, (choice.best, choice.returning, choice.critical)
            if self.critic and 0 < choice.steps_left <= self.critic_horizon:
                labels[t] = self._critic_label(student)
            agreed += int(labels[t, 0] >> student) & 1
            critical_agreed += int(labels[t, 2] and (labels[t, 0] >> student) & 1)
            action = choice.action if self.rng.random() < share else student
            if 0 < choice.steps_left <= self.branch_horizon:
                for observation, label in self._branches(action)[:len(states) - branched]:
                    states[branched], labels[branched] = observation, label
                    branched += 1
            self.observation, rewards[t], terminated, truncated, _ = self.env.step(action)
            self.teacher.last_action = action
            self.score += rewards[t]
            if terminated or truncated:
                ended[t] = 1.0
                games.append(self.score)
                self.score = 0.0
                self.observation, _ = self.env.reset(seed=int(self.rng.integers(2**31)))
                self.teacher.reset()
        ended[-1] = 1.0  # the episode the round stops in counts as ended
        returns = gae({"rewards": rewards[:, None], "values": np.zeros((steps, 1), np.float32),
                       "dones": ended[:, None]}, np.zeros(1, np.float32), self.gamma, 1.0)[:, 0]
        returns = np.concatenate([returns, np.full(branched - steps, np.nan, np.float32)])
        kept = np.ones(branched, bool)
        weights = np.ones(branched, np.float32)
        if self.easy_keep < 1:
            easy = labels[:steps, 2] == 0
            kept[:steps] = ~easy | (self.rng.random(steps) < self.easy_keep)
            weights[:steps][easy] = 1 / self.easy_keep
        return {"states": states[:branched][kept], "labels": labels[:branched][kept], "returns": returns[kept],
                "weights": weights[kept], "games": games, "agreed": agreed,
                "critical": int(labels[:steps, 2].sum()), "critical_agreed": critical_agreed}


_player: _Player | None = None


def _start_player(env_id: str, seed: int, config: PixelDAggerConfig, started) -> None:
    global _player
    exit_with_parent()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with started.get_lock():
        index, started.value = started.value, started.value + 1
    _player = _Player(env_id, seed + 1000 * config.first_round + index, config)


def _play(job) -> dict:
    return _player.play(*job)


class _Dataset:
    """The states learnt from so far, with their labels (the teacher's best and returning actions as bit
    masks, critical), discounted scores and weights; room grows by half when it runs out."""

    def __init__(self, room: int, shape: tuple[int, ...]):
        self.filled = 0
        self.states = np.zeros((room, *shape), np.uint8)
        self.labels = np.zeros((room, 3), np.uint8)
        self.returns = np.zeros(room, np.float32)
        self.weights = np.zeros(room, np.float32)

    def add(self, part: dict) -> None:
        end = self.filled + len(part["states"])
        if end > len(self.states):
            room = max(end, len(self.states) * 3 // 2)
            for name in ("states", "labels", "returns", "weights"):
                old = getattr(self, name)
                grown = np.zeros((room, *old.shape[1:]), old.dtype)
                grown[:self.filled] = old[:self.filled]
                setattr(self, name, grown)
        for name in ("states", "labels", "returns", "weights"):
            getattr(self, name)[self.filled:end] = part[name]
        self.filled = end


def train_dagger_pixels(env_id: str, seed: int, config: PixelDAggerConfig):
    """Train, playing in ``config.workers`` processes; returns (model, None, agent steps)."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    env = make_env(env_id)
    shape, n_actions = env.observation_space.shape, int(env.action_space.n)
    env.close()
    model = build_pixel_student(shape, n_actions, config)
    if config.initial_model:
        model.set_weights(keras.saving.load_model(config.initial_model, compile=False).get_weights())
    optimizer = keras.optimizers.Adam(config.learning_rate)
    per_worker = config.total_steps // config.rounds // config.workers
    per_round = (per_worker + (per_worker // 4 if config.branch_horizon else 0)) * config.workers
    # room for every state, or for the easy ones kept and 5% critical (about 2%); np.zeros takes memory as it is filled
    data = _Dataset(int(per_round * config.rounds * min(1.0, config.easy_keep + 0.05)), shape)

    # Not XLA: on a CPU, oneDNN's convolutions train faster (139 ms for a 512-state update against 214)
    @tf.function(jit_compile=False)
    def update(obs, label, value_target, kept_weight):
        with tf.GradientTape() as tape:
            out = model(tf.cast(obs, tf.float32), training=True)
            weight = kept_weight * (1.0 + (config.critical_weight - 1.0) * tf.cast(label[:, 2], tf.float32))
            policy_loss = tf.reduce_sum(weight * set_cross_entropy(out["logits"], label[:, :2])) / tf.reduce_sum(weight)
            known = tf.cast(~tf.math.is_nan(value_target), tf.float32)  # a branch's return is not known
            error = tf.where(known > 0, out["value"][:, 0] - value_target, 0.0)
            value_loss = tf.reduce_sum(kept_weight * error ** 2) / tf.maximum(tf.reduce_sum(kept_weight * known), 1.0)
            loss = policy_loss + 0.5 * value_loss
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return policy_loss, value_loss

    start, losses, games = time.time(), (np.nan, np.nan), []
    context = multiprocessing.get_context("spawn")
    with context.Pool(config.workers, _start_player, (env_id, seed, config, context.Value("i", 0))) as pool:
        for round_index in range(config.rounds):
            share = config.teacher_share ** (config.first_round + round_index)
            played = pool.map(_play, [(model.get_weights(), per_worker, share)] * config.workers, chunksize=1)
            for part in played:
                data.add(part)
                games += part["games"]
            agreed = sum(part["agreed"] for part in played) / (per_worker * config.workers)
            critical = sum(part["critical"] for part in played)
            critical_agreed = sum(part["critical_agreed"] for part in played) / max(critical, 1)
            progress = round_index / max(config.rounds - 1, 1)
            optimizer.learning_rate.assign(
                config.learning_rate * (config.final_learning_rate / config.learning_rate) ** progress)
            for _ in range(config.epochs):
                order = rng.permutation(data.filled)
                for begin in range(0, data.filled - config.minibatch + 1, config.minibatch):
                    index = np.sort(order[begin:begin + config.minibatch])
                    losses = update(data.states[index], data.labels[index], data.returns[index], data.weights[index])
            recent = f"{np.mean(games[-6:]):+.1f}" if games else "none finished"
            number, last = config.first_round + round_index + 1, config.first_round + config.rounds
            print(f"round {number}/{last}: {data.filled:,} states, teacher acting {share:.0%}, the student took "
                  f"one of its best actions on {agreed:.0%} (on {critical_agreed:.0%} of {critical:,} critical "
                  f"states), last games {recent} ({len(games)} in all), losses {float(losses[0]):.3f} / "
                  f"{float(losses[1]):.3f}, {(time.time() - start) / 60:.1f} min",
                  file=sys.stderr, flush=True)
    return model, None, per_worker * config.workers * config.rounds
