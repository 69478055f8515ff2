"""Completeness at default settings on a trained policy, over states from real CartPole rollouts.

The policy is a 4-64-64-2 tanh actor trained here in seconds, by imitation of a hand-written
balancing controller, so this test stands on its own; the shipped policies get the same check
in their own tests."""

import gymnasium as gym
import keras
import numpy as np
import pytest

from attribution import explain, integrated_gradients


def balancing_controller(obs: np.ndarray) -> int:
    """Push towards where the pole is falling: a textbook CartPole controller."""
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)


def rollout_states(act, episodes: int, seed: int, noise: float = 0.0) -> np.ndarray:
    env, rng, states = gym.make("CartPole-v1"), np.random.default_rng(seed), []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            states.append(obs)
            action = act(obs) if rng.random() >= noise else int(rng.integers(2))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    return np.array(states, dtype=np.float32)


@pytest.fixture(scope="module")
def trained_policy():
    keras.utils.set_random_seed(0)
    states = rollout_states(balancing_controller, episodes=8, seed=100, noise=0.2)
    labels = np.array([balancing_controller(s) for s in states])
    obs = keras.Input((4,))
    hidden = keras.layers.Dense(64, activation="tanh")(keras.layers.Dense(64, activation="tanh")(obs))
    policy = keras.Model(obs, {"logits": keras.layers.Dense(2)(hidden)})
    trainer = keras.Model(obs, policy(obs)["logits"])
    trainer.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    history = trainer.fit(states, labels, epochs=15, batch_size=128, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    return policy


def test_the_policy_balances(trained_policy):
    model = explain.action_logits(trained_policy)
    states = rollout_states(lambda obs: int(model(obs[None]).numpy().argmax()), episodes=1, seed=7)
    assert len(states) >= 200


@pytest.mark.parametrize(
    "wrap", [explain.action_probabilities, explain.action_logits, explain.action_log_probabilities]
)
def test_gap_under_one_percent_at_default_settings_over_real_rollout_states(trained_policy, wrap):
    model = wrap(trained_policy)
    greedy = explain.action_logits(trained_policy)
    states = rollout_states(lambda obs: int(greedy(obs[None]).numpy().argmax()), episodes=2, seed=11)[:400]
    assert len(states) >= 300
    baseline = states.mean(axis=0)  # zeros is the upright, centred pole: a baseline near many states
    for kwargs in ({}, {"baseline": baseline}):
        result = integrated_gradients(model, states, **kwargs)
        change = np.abs(result.output_change)
        meaningful = change > 1e-3  # a gap relative to almost nothing is float32 noise
        assert meaningful.mean() > 0.9
        assert (np.abs(result.delta)[meaningful] <= 0.01 * change[meaningful]).all()
        assert (np.abs(result.delta) <= 1e-4).all()
