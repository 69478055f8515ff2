"""Stable-Baselines3 ``.zip`` files, rebuilt as Keras models without running anything in them.

An SB3 zip (``model.save``) holds ``data``, a JSON of the algorithm's attributes, and ``policy.pth``,
the policy's state_dict. Attributes JSON cannot hold (the policy class, the spaces, the activation)
are stored there twice: as a cloudpickle (``:serialized:``), which is never decoded here, and as
plain text beside it (``__module__``, ``_shape``, ``low``, ``activation_fn``: "<class '...ReLU'>"),
which is all this reader uses. ``policy.pth`` goes through ``torch_state.read_state_dict``.

What is rebuilt, per algorithm (SB3's own ``forward``/``predict`` paths):
- PPO, A2C (ActorCriticPolicy; MlpPolicy or CnnPolicy): features -> mlp_extractor.policy_net ->
  action_net gives "logits" (discrete) or "mean" (the Gaussian's mean; ``predict`` clips it to the
  bounds, as Policy.act does); mlp_extractor.value_net -> value_net gives "value". Tanh by default.
- DQN: q_net.features_extractor -> q_net.q_net gives "q_values". ReLU by default.
- SAC: actor.latent_pi -> actor.mu, squashed by tanh and rescaled to the action bounds gives
  "mean" (what ``predict(deterministic=True)`` returns); "value" is the first critic's Q at that action.
- TD3: actor.mu (ending in tanh), rescaled to the bounds, gives "mean"; "value" is critic.qf0 there.
Images (uint8 observations with three axes) are divided by 255 first, as SB3's ``preprocess_obs`` does.
"""

from __future__ import annotations

import json
import re

import gymnasium as gym
import keras
import numpy as np

from attribution.rl.archives import MEGABYTE, ArchiveError, ArchiveLimits, open_archive
from attribution.rl.errors import PolicyError
from attribution.rl.formats import layers
from attribution.rl.formats.torch_state import read_state_dict

SB3_LIMITS = ArchiveLimits("a Stable-Baselines3 model (a .zip written by model.save)", max_members=32,
                           max_total_bytes=512 * MEGABYTE, max_ratio=50)
DEFAULT_ACTIVATION = {"PPO": "Tanh", "A2C": "Tanh", "DQN": "ReLU", "SAC": "ReLU", "TD3": "ReLU"}


def load_sb3(source, name: str, observation_space: gym.spaces.Box, action_space: gym.Space) -> tuple[keras.Model, str]:
    """An SB3 zip (path or file object) as (Keras model of raw observations -> heads, description)."""
    try:
        with open_archive(source, SB3_LIMITS, name) as archive:
            if "data" not in archive.members or "policy.pth" not in archive.members:
                raise PolicyError(f"{name} is not a Stable-Baselines3 model: it needs members 'data' and 'policy.pth'; "
                                  f"it holds {sorted(archive.members)}.")
            data, policy_bytes = archive.read("data"), archive.read("policy.pth")
    except ArchiveError as error:
        raise PolicyError(str(error)) from None
    try:
        attributes = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PolicyError(f"{name}: its 'data' member is not JSON: {error}") from None
    if not isinstance(attributes, dict):
        raise PolicyError(f"{name}: its 'data' member is not a JSON object.")
    state = read_state_dict(policy_bytes, f"policy.pth in {name}")
    algorithm = _algorithm(attributes, name)
    _check_spaces(attributes, name, observation_space, action_space)
    kwargs = attributes.get("policy_kwargs") or {}
    activation_text = kwargs.get("activation_fn", DEFAULT_ACTIVATION[algorithm]) if isinstance(kwargs, dict) \
        else DEFAULT_ACTIVATION[algorithm]
    activation = layers.activation_name(str(activation_text), name)
    normalize_images = not isinstance(kwargs, dict) or kwargs.get("normalize_images", True) in (True, "True")
    build = {"PPO": _actor_critic, "A2C": _actor_critic, "DQN": _dqn, "SAC": _sac, "TD3": _td3}[algorithm]
    observations = keras.Input(observation_space.shape, name="observation")
    features = _preprocess(observations, observation_space, normalize_images)
    outputs, body = build(features, state, activation, action_space)
    model = keras.Model(observations, outputs, name=f"sb3_{algorithm.lower()}")
    kind = "CnnPolicy" if body == "cnn" else "MlpPolicy"
    widths = "-".join(str(w) for w in _hidden_widths(state, algorithm))
    version = attributes.get("_stable_baselines3_version") or ""
    description = (f"Stable-Baselines3 {algorithm}, {kind} {widths} {activation_text_short(activation_text)}"
                   f"{f' (SB3 {version})' if version else ''}")
    return model, description


def activation_text_short(text) -> str:
    return str(text).rsplit(".", 1)[-1].strip("'>").lower()


def _algorithm(attributes: dict, name: str) -> str:
    """PPO, A2C, DQN, SAC or TD3, from the policy class's module (plain text) and the algorithm's attributes."""
    policy_class = attributes.get("policy_class")
    module = policy_class.get("__module__", "") if isinstance(policy_class, dict) else ""
    by_module = {"stable_baselines3.dqn.policies": "DQN", "stable_baselines3.sac.policies": "SAC",
                 "stable_baselines3.td3.policies": "TD3"}
    if module in by_module:
        return by_module[module]
    if module == "stable_baselines3.common.policies":
        return "PPO" if "n_epochs" in attributes else "A2C"
    raise PolicyError(f"{name}: its policy class comes from {module or 'an unnamed module'!r}; this app reads "
                      "Stable-Baselines3's PPO, A2C, DQN, SAC and TD3 policies.")


def _numbers(text) -> np.ndarray:
    """A numpy array's repr as SB3 stores it ("[-2. -2.]") as floats; refuses a shortened one ("...")."""
    if isinstance(text, (int, float, list)):
        return np.asarray(text, np.float64)
    if "..." in str(text):
        raise ValueError("the bounds were written shortened")
    return np.asarray([float(value) for value in re.findall(r"[-+]?(?:inf|nan|\d+\.?\d*(?:e[-+]?\d+)?)",
                                                             str(text))], np.float64)


def _check_spaces(attributes: dict, name: str, observation_space, action_space) -> None:
    """The file's spaces (their plain-text copies) must be the environment's."""
    saved_obs, saved_act = attributes.get("observation_space"), attributes.get("action_space")
    if not isinstance(saved_obs, dict) or not isinstance(saved_act, dict):
        raise PolicyError(f"{name}: its 'data' has no observation_space and action_space.")
    shape = tuple(saved_obs.get("_shape") or ())
    if shape != tuple(observation_space.shape):
        raise PolicyError(f"{name} was trained on observations of shape {shape}; the environment's are "
                          f"{tuple(observation_space.shape)}.")
    if isinstance(action_space, gym.spaces.Discrete):
        n = saved_act.get("n")
        if n is None or int(n) != int(action_space.n):
            raise PolicyError(f"{name} was trained with {n if n is not None else 'non-discrete'} actions; the "
                              f"environment has {int(action_space.n)}.")
        return
    shape = tuple(saved_act.get("_shape") or ())
    if shape != tuple(action_space.shape):
        raise PolicyError(f"{name} was trained with actions of shape {shape}; the environment's are "
                          f"{tuple(action_space.shape)}.")
    try:
        low, high = _numbers(saved_act.get("low")), _numbers(saved_act.get("high"))
    except ValueError as error:
        raise PolicyError(f"{name}: the action bounds cannot be read: {error}.") from None
    if not (np.allclose(low, action_space.low) and np.allclose(high, action_space.high)):
        raise PolicyError(f"{name} was trained with actions in [{low}, {high}]; the environment's are "
                          f"[{action_space.low}, {action_space.high}].")


def _preprocess(observations, observation_space, normalize_images: bool):
    image = (len(observation_space.shape) == 3 and observation_space.dtype == np.uint8)
    return keras.layers.Rescaling(1 / 255)(observations) if image and normalize_images else observations


def _features(x, state: dict, prefix: str):
    """SB3's features extractor at ``prefix``: NatureCNN (``cnn``, ``linear``) or Flatten. Returns (features, kind)."""
    if f"{prefix}.cnn.0.weight" in state:
        x = layers.nature_cnn(layers.channels_last(x), state, f"{prefix}.cnn")
        return layers.dense(x, state, f"{prefix}.linear.0", "relu"), "cnn"
    return keras.layers.Flatten()(x) if len(x.shape) > 2 else x, "mlp"


def _same_weights(state: dict, prefix: str, other: str) -> bool:
    """Whether two modules' parameters are the same (SB3 saves a shared features extractor under each name)."""
    mine = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix + ".")}
    theirs = {key[len(other):]: value for key, value in state.items() if key.startswith(other + ".")}
    return mine.keys() == theirs.keys() and all(np.array_equal(mine[key], theirs[key]) for key in mine)


def _actor_critic(x, state, activation, action_space):
    pi_features, kind = _features(x, state, "pi_features_extractor")
    vf_features = pi_features
    if not _same_weights(state, "pi_features_extractor", "vf_features_extractor"):
        vf_features = _features(x, state, "vf_features_extractor")[0]
    latent_pi = layers.mlp(pi_features, state, layers.sequential_linears(state, "mlp_extractor.policy_net"), activation)
    latent_vf = layers.mlp(vf_features, state, layers.sequential_linears(state, "mlp_extractor.value_net"), activation)
    actor = "mean" if isinstance(action_space, gym.spaces.Box) else "logits"
    return {actor: layers.dense(latent_pi, state, "action_net", name=actor),
            "value": layers.dense(latent_vf, state, "value_net", name="value")}, kind


def _dqn(x, state, activation, action_space):
    features, kind = _features(x, state, "q_net.features_extractor")
    linears = layers.sequential_linears(state, "q_net.q_net")
    hidden = layers.mlp(features, state, linears[:-1], activation)
    return {"q_values": layers.dense(hidden, state, linears[-1], name="q_values")}, kind


def _rescale(squashed, action_space: gym.spaces.Box, name: str):
    """tanh output in [-1, 1] -> the action bounds, as SB3's ``unscale_action``: low + (a + 1) (high - low) / 2."""
    low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
    layer = keras.layers.Dense(len(low), name=name)
    layer.build((None, len(low)))
    layer.set_weights([np.diag((high - low) / 2), low + (high - low) / 2])
    return layer(squashed)


def _critic_value(x, action, state, activation, prefix: str):
    """SB3's ContinuousCritic network at ``prefix`` on [features, action]."""
    joined = keras.layers.Concatenate()([x, action])
    linears = layers.sequential_linears(state, prefix)
    return layers.dense(layers.mlp(joined, state, linears[:-1], activation), state, linears[-1], name="value")


def _sac(x, state, activation, action_space):
    latent = layers.mlp(x, state, layers.sequential_linears(state, "actor.latent_pi"), activation)
    squashed = keras.layers.Activation("tanh")(layers.dense(latent, state, "actor.mu"))
    return {"mean": _rescale(squashed, action_space, "mean"),
            "value": _critic_value(x, squashed, state, activation, "critic.qf0")}, "mlp"


def _td3(x, state, activation, action_space):
    linears = layers.sequential_linears(state, "actor.mu")
    squashed = layers.dense(layers.mlp(x, state, linears[:-1], activation), state, linears[-1], "tanh")
    return {"mean": _rescale(squashed, action_space, "mean"),
            "value": _critic_value(x, squashed, state, activation, "critic.qf0")}, "mlp"


def _hidden_widths(state: dict, algorithm: str) -> list[int]:
    prefix = {"PPO": "mlp_extractor.policy_net", "A2C": "mlp_extractor.policy_net", "DQN": "q_net.q_net",
              "SAC": "actor.latent_pi", "TD3": "actor.mu"}[algorithm]
    linears = layers.sequential_linears(state, prefix)
    if algorithm in ("DQN", "TD3"):
        linears = linears[:-1]
    return [int(state[f"{key}.weight"].shape[0]) for key in linears]
