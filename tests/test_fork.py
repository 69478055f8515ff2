"""Forking an episode: an edited state or another action at one step, then the policy plays on."""

import dataclasses

import numpy as np
import pytest

from attribution.episodes import record_episode
from attribution.rl.fork import can_edit_state, fork_episode
from attribution.rl.policies import load_policy


@pytest.fixture(scope="module")
def cartpole():
    policy = load_policy("CartPole-v1")
    return policy, record_episode(policy, seed=2, max_steps=40)


def test_forking_with_the_state_it_had_replays_the_original(cartpole):
    policy, episode = cartpole
    fork = fork_episode(policy, episode, 10, observation=episode.observations[10])
    np.testing.assert_allclose(fork.observations[:30], episode.observations[10:40], atol=1e-6)
    np.testing.assert_array_equal(fork.actions[:30], episode.actions[10:40])
    assert fork.truncated and len(fork) == 500 - 10  # the time limit counts from the episode's start
    np.testing.assert_array_equal(fork.frames[0], episode.frames[10])


def test_an_edited_state_is_where_the_fork_starts(cartpole):
    policy, episode = cartpole
    tilted = episode.observations[10].copy()
    tilted[2] = 0.18  # the pole far to the right: the policy must push right at once
    fork = fork_episode(policy, episode, 10, observation=tilted)
    np.testing.assert_allclose(fork.observations[0], tilted, atol=1e-7)
    assert policy.info.action_names[fork.actions[0]] == "push right"
    assert not np.allclose(fork.frames[0], episode.frames[10])  # the picture shows the edit


def test_another_action_at_the_fork(cartpole):
    policy, episode = cartpole
    other = 1 - int(episode.actions[5])
    fork = fork_episode(policy, episode, 5, action=other)
    assert fork.actions[0] == other
    np.testing.assert_array_equal(fork.observations[0], episode.observations[5])
    assert not np.allclose(fork.observations[1], episode.observations[6])


def test_angles_are_rebuilt_from_cosine_and_sine():
    policy = load_policy("Pendulum-v1")
    episode = record_episode(policy, seed=0, max_steps=5)
    edited = np.array([np.cos(2.0), np.sin(2.0), 1.5], np.float32)
    fork = fork_episode(policy, episode, 3, observation=edited)
    np.testing.assert_allclose(fork.observations[0], edited, atol=1e-6)


def test_what_cannot_be_forked_is_refused_with_the_reason(cartpole):
    policy, episode = cartpole
    assert can_edit_state("Acrobot-v1") and not can_edit_state("LunarLander-v3")
    lander = load_policy("LunarLander-v3")
    landing = record_episode(lander, seed=0, max_steps=5, render=False)
    with pytest.raises(ValueError, match="LunarLander-v3's simulator state cannot be set"):
        fork_episode(lander, landing, 2, observation=landing.observations[2])
    with pytest.raises(ValueError, match="between 0 and 39; received 40"):
        fork_episode(policy, episode, 40, action=0)
    with pytest.raises(ValueError, match="finite numbers"):
        fork_episode(policy, episode, 3, observation=[0, np.nan, 0, 0])
    with pytest.raises(ValueError, match="either an edited observation or another action"):
        fork_episode(policy, episode, 3)


def test_a_recording_that_does_not_replay_to_the_fork_step_is_refused(cartpole):
    policy, episode = cartpole
    pushing_left = dataclasses.replace(episode, actions=np.zeros(len(episode), np.int64))  # falls within 40 steps
    for edit in ({"action": 1}, {"observation": episode.observations[39]}):
        with pytest.raises(ValueError, match=r"replaying the episode's actions ended it before step 39"):
            fork_episode(policy, pushing_left, 39, **edit)
