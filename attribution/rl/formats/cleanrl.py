"""CleanRL's ``.cleanrl_model`` files, rebuilt as Keras models.

CleanRL's scripts save a bare state_dict (``torch.save(agent.state_dict(), path)``; TD3 saves the
tuple (actor, qf1, qf2)), with no word of the architecture. A file is therefore recognised only by
its exact key set and shapes, as one of the networks of the scripts in ``LAYOUTS``, and rebuilt as
that script's ``forward``; anything else is refused with the list of layouts that are known.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import gymnasium as gym
import keras
import numpy as np

from attribution.rl.errors import PolicyError
from attribution.rl.formats import layers


@dataclasses.dataclass(frozen=True)
class Layout:
    script: str                       # the CleanRL script that saves it
    keys: frozenset[str]              # its state_dict's keys ("i:key" for the i-th dict where it saves several)
    build: Callable                   # (observations, [state dicts]) -> {head: tensor}
    continuous: bool


def _linears(*prefixes: str) -> set[str]:
    return {f"{prefix}.{kind}" for prefix in prefixes for kind in ("weight", "bias")}


def _dqn(x, states):
    """dqn.py's QNetwork: Linear-ReLU-Linear-ReLU-Linear on the flattened observation."""
    state = states[0]
    hidden = layers.mlp(keras.layers.Flatten()(x) if len(x.shape) > 2 else x, state, ["network.0", "network.2"], "relu")
    return {"q_values": layers.dense(hidden, state, "network.4", name="q_values")}


def _atari_features(x, state):
    """The Atari scripts' ``network(x / 255)``: the Nature CNN, then its 512 features (network.7)."""
    images = layers.channels_last(keras.layers.Rescaling(1 / 255)(x))
    return layers.dense(layers.nature_cnn(images, state, "network"), state, "network.7", "relu")


def _dqn_atari(x, states):
    """dqn_atari.py's QNetwork: the Atari features, then Q-values (network.9)."""
    return {"q_values": layers.dense(_atari_features(x, states[0]), states[0], "network.9", name="q_values")}


def _actor_and_critic(x, state, actor: str, head: str):
    """The Agent of ppo.py and ppo_continuous_action.py: an actor and a critic, Linear-Tanh-Linear-Tanh-Linear each."""
    hidden_actor = layers.mlp(x, state, [f"{actor}.0", f"{actor}.2"], "tanh")
    hidden_critic = layers.mlp(x, state, ["critic.0", "critic.2"], "tanh")
    return {head: layers.dense(hidden_actor, state, f"{actor}.4", name=head),
            "value": layers.dense(hidden_critic, state, "critic.4", name="value")}


def _ppo(x, states):
    return _actor_and_critic(x, states[0], "actor", "logits")


def _ppo_atari(x, states):
    """ppo_atari.py's Agent: the Atari features, then an actor and a critic."""
    features = _atari_features(x, states[0])
    return {"logits": layers.dense(features, states[0], "actor", name="logits"),
            "value": layers.dense(features, states[0], "critic", name="value")}


def _ppo_continuous(x, states):
    return _actor_and_critic(x, states[0], "actor_mean", "mean")


def _td3(x, states):
    """td3_continuous_action.py's Actor (ReLU MLP, tanh, then its action_scale and action_bias buffers) and
    QNetwork qf1 at the actor's action; qf2 is not used."""
    actor, qf1 = states[0], states[1]
    squashed = layers.dense(layers.mlp(x, actor, ["fc1", "fc2"], "relu"), actor, "fc_mu", "tanh")
    mean = layers.affine(squashed, layers.take(actor, "action_scale"), layers.take(actor, "action_bias"), "mean")
    q = layers.mlp(keras.layers.Concatenate()([x, mean]), qf1, ["fc1", "fc2"], "relu")
    return {"mean": mean, "value": layers.dense(q, qf1, "fc3", name="value")}


LAYOUTS = (
    Layout("dqn.py", frozenset(_linears("network.0", "network.2", "network.4")), _dqn, False),
    Layout("dqn_atari.py", frozenset(_linears("network.0", "network.2", "network.4", "network.7", "network.9")),
           _dqn_atari, False),
    Layout("ppo.py", frozenset(_linears("actor.0", "actor.2", "actor.4", "critic.0", "critic.2", "critic.4")),
           _ppo, False),
    Layout("ppo_atari.py", frozenset(_linears("network.0", "network.2", "network.4", "network.7", "actor", "critic")),
           _ppo_atari, False),
    Layout("ppo_continuous_action.py",
           frozenset(_linears("actor_mean.0", "actor_mean.2", "actor_mean.4", "critic.0", "critic.2", "critic.4")
                     | {"actor_logstd"}), _ppo_continuous, True),
    Layout("td3_continuous_action.py",
           frozenset({f"0:{key}" for key in _linears("fc1", "fc2", "fc_mu") | {"action_scale", "action_bias"}}
                     | {f"{i}:{key}" for i in (1, 2) for key in _linears("fc1", "fc2", "fc3")}), _td3, True),
)


def _key_set(states: list[dict]) -> frozenset[str]:
    if len(states) == 1:
        return frozenset(states[0])
    return frozenset(f"{i}:{key}" for i, state in enumerate(states) for key in state)


def load_cleanrl(states: list[dict[str, np.ndarray]], name: str, observation_space: gym.spaces.Box,
                 action_space: gym.Space) -> tuple[keras.Model, str]:
    """The state dict(s) of a ``.cleanrl_model`` as (Keras model of raw observations -> heads, description)."""
    keys = _key_set(states)
    layout = next((layout for layout in LAYOUTS if layout.keys == keys), None)
    if layout is None:
        known = "; ".join(f"{layout.script}: {', '.join(sorted(layout.keys))}" for layout in LAYOUTS)
        raise PolicyError(f"{name} is not a network of a CleanRL script this app knows. It holds "
                          f"{', '.join(sorted(keys)[:12])}{', ...' if len(keys) > 12 else ''}. Known layouts: {known}.")
    if layout.continuous != isinstance(action_space, gym.spaces.Box):
        raise PolicyError(f"{name} is CleanRL's {layout.script} network, for "
                          f"{'continuous' if layout.continuous else 'discrete'} actions; the environment's are "
                          f"{'continuous' if isinstance(action_space, gym.spaces.Box) else 'discrete'}.")
    observations = keras.Input(observation_space.shape, name="observation")
    model = keras.Model(observations, layout.build(observations, states),
                        name=f"cleanrl_{layout.script.removesuffix('.py')}")
    description = f"CleanRL {layout.script.removesuffix('.py')} network"
    if layout.script == "ppo_continuous_action.py":  # trained behind NormalizeObservation, whose numbers it lacks
        description += " (its script normalises observations: upload the statistics as a normalisation file)"
    return model, description
