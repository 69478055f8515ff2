"""Stable-Baselines3 ``.zip`` files, rebuilt as Keras models without running anything in them.

An SB3 zip (``model.save``) holds ``data``, a JSON of the algorithm's attributes, and ``policy.pth``,
the policy's state_dict. Attributes JSON cannot hold (the policy class, the spaces, the activation)
are stored there twice: as a cloudpickle (``:serialized:``), which is never decoded here, and as
plain text beside it (``__module__``, ``_shape``, ``low``, ``activation_fn``: "<class '...ReLU'>"),
which is all this reader uses. ``policy.pth`` goes through ``torch_state.read_state_dict``.

What is rebuilt, per algorithm (SB3's own ``forward``/``predict`` paths):
- PPO, A2C (ActorCriticPolicy; MlpPolicy or CnnPolicy): features -> mlp_extractor.policy_net ->
  action_net gives "logits" (discrete) or "mean" (the Gaussian's mean; ``predict`` clips it to the
  bounds, as Policy.act does; with gSDE's ``squash_output`` it is tanh'd and rescaled to the bounds);
  mlp_extractor.value_net -> value_net gives "value". Tanh by default.
- DQN: q_net.features_extractor -> q_net.q_net gives "q_values". ReLU by default.
- SAC: actor.latent_pi -> actor.mu, squashed by tanh and rescaled to the action bounds gives
  "mean" (what ``predict(deterministic=True)`` returns); "value" is the first critic's Q at that action.
- TD3: actor.mu (ending in tanh), rescaled to the bounds, gives "mean"; "value" is critic.qf0 there.
Images (a uint8 Box of three axes within [0, 255], as SB3's ``is_image_space``) are divided by 255
first, as SB3's ``preprocess_obs`` does. A weight the rebuilt model does not use refuses the file:
it would belong to an architecture this reader does not know.
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

# SB3 keeps the last observations in 'data' as base64: an Atari model's compress far (187 times), so the
# ratio is loose; 'data' itself is capped, and so is the JSON's nesting and count of values
SB3_LIMITS = ArchiveLimits("a Stable-Baselines3 model (a .zip written by model.save)", max_members=32,
                           max_total_bytes=512 * MEGABYTE, max_ratio=1000)
MAX_DATA_BYTES = 64 * MEGABYTE
MAX_JSON_SEPARATORS = 1_000_000  # ',' and ':' in 'data'; a real file has a few thousand
DEFAULT_ACTIVATION = {"PPO": "Tanh", "A2C": "Tanh", "DQN": "ReLU", "SAC": "ReLU", "TD3": "ReLU"}
# weights SB3 saves that predict does not use: target networks, the second critic, the log std of the
# exploration noise, and the copies of a shared features extractor under its other names
UNUSED = ("log_std", "actor.log_std.", "q_net_target.", "actor_target.", "critic_target.", "critic.qf1.",
          "critic.qf2.", "features_extractor.", "vf_features_extractor.")


def load_sb3(source, name: str, observation_space: gym.spaces.Box, action_space: gym.Space) -> tuple[keras.Model, str]:
    """An SB3 zip (path or file object) as (Keras model of raw observations -> heads, description)."""
    attributes, state, version = _read(source, name)
    algorithm = _algorithm(attributes, name)
    _check_spaces(attributes, name, observation_space, action_space)
    kwargs = attributes.get("policy_kwargs")
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    activation_class = str(kwargs.get("activation_fn", DEFAULT_ACTIVATION[algorithm]))
    activation = layers.activation_name(activation_class, name)
    build = {"PPO": _actor_critic, "A2C": _actor_critic, "DQN": _dqn, "SAC": _sac, "TD3": _td3}[algorithm]
    observations = keras.Input(observation_space.shape, name="observation")
    x = observations
    if _is_image(observation_space) and kwargs.get("normalize_images", True) in (True, "True"):
        x = keras.layers.Rescaling(1 / 255)(x)
    outputs, body = build(x, state, activation, action_space, kwargs)
    unused = state.unused(UNUSED)
    if unused:
        raise PolicyError(f"{name}: the {algorithm} policy this app rebuilds leaves weights unused "
                          f"({', '.join(unused[:6])}{', ...' if len(unused) > 6 else ''}): the file has layers of an "
                          "architecture it does not know (a custom features extractor, or shared layers from SB3 "
                          "before 1.8), so it is refused rather than explained wrongly.")
    model = keras.Model(observations, outputs, name=f"sb3_{algorithm.lower()}")
    kind = f"CnnPolicy (Nature CNN, {body} features)" if body else "MlpPolicy"
    widths = "-".join(str(w) for w in _hidden_widths(state, algorithm)) or "no hidden layers"
    short = activation_class.rsplit(".", 1)[-1].strip("'>")
    return model, (f"Stable-Baselines3 {algorithm}, {kind} {widths} {short.lower()}"
                   f"{f' (SB3 {version})' if version else ''}")


def _read(source, name: str) -> tuple[dict, layers.Weights, str]:
    """(the 'data' attributes, policy.pth's weights, the SB3 version that wrote it, or "")."""
    try:
        with open_archive(source, SB3_LIMITS, name) as archive:
            if "data" not in archive.members or "policy.pth" not in archive.members:
                raise PolicyError(f"{name} is not a Stable-Baselines3 model: it needs members 'data' and 'policy.pth'; "
                                  f"it holds {sorted(archive.members)}.")
            if archive.info("data").file_size > MAX_DATA_BYTES:
                raise PolicyError(f"{name}: its 'data' member declares {archive.info('data').file_size:,} bytes; "
                                  f"a model's attributes take at most {MAX_DATA_BYTES:,}.")
            data, policy_bytes = archive.read("data"), archive.read("policy.pth")
            version = archive.read("_stable_baselines3_version") if "_stable_baselines3_version" in archive.members \
                else b""
    except ArchiveError as error:
        raise PolicyError(str(error)) from None
    if data.count(b",") + data.count(b":") > MAX_JSON_SEPARATORS:
        raise PolicyError(f"{name}: its 'data' member holds more than {MAX_JSON_SEPARATORS:,} values; a model's "
                          "attributes hold a few thousand.")
    try:
        attributes = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise PolicyError(f"{name}: its 'data' member is not JSON: {type(error).__name__}: {error}") from None
    if not isinstance(attributes, dict):
        raise PolicyError(f"{name}: its 'data' member is not a JSON object.")
    weights = layers.Weights(read_state_dict(policy_bytes, f"policy.pth in {name}"))
    version = version.decode("ascii", "replace").strip()[:20] if re.fullmatch(rb"[\w.+-]{1,20}\s*", version) else ""
    return attributes, weights, version


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
    raise PolicyError(f"{name}: its policy class comes from {str(module) or 'an unnamed module'!r}; this app reads "
                      "Stable-Baselines3's PPO, A2C, DQN, SAC and TD3 policies.")


def _numbers(text) -> np.ndarray:
    """A numpy array's repr as SB3 stores it ("[-2. -2.]") as floats; refuses a shortened one ("...")."""
    if "..." in str(text):
        raise ValueError("they were written shortened")
    return np.asarray([float(value) for value in re.findall(r"[-+]?(?:inf|nan|\d+\.?\d*(?:e[-+]?\d+)?)",
                                                             str(text)[:10_000])], np.float64)


def _space(attributes: dict, key: str, name: str) -> tuple[str, tuple[int, ...], dict]:
    """(the space's class name, its shape, its plain-text entries), checked to be what SB3 writes."""
    saved = attributes.get(key)
    if not isinstance(saved, dict):
        raise PolicyError(f"{name}: its 'data' has no {key}.")
    kind = re.sub(r"^<class '(?:[\w.]*\.)?(\w+)'>$", r"\1", str(saved.get(":type:", "")))
    shape = saved.get("_shape")
    if not (isinstance(shape, list) and len(shape) <= 8 and all(type(n) is int and n >= 0 for n in shape)):
        raise PolicyError(f"{name}: its {key} has shape {str(shape)[:60]}; expected a list of sizes.")
    return kind, tuple(shape), saved


def _check_spaces(attributes: dict, name: str, observation_space, action_space) -> None:
    """The file's spaces (their plain-text copies) must be the environment's."""
    kind, shape, _ = _space(attributes, "observation_space", name)
    if kind != "Box":
        raise PolicyError(f"{name} was trained on a {kind or 'unnamed'} observation space (a Dict needs SB3's "
                          "MultiInputPolicy); this app reads policies of Box observations.")
    if shape != tuple(observation_space.shape):
        raise PolicyError(f"{name} was trained on observations of shape {shape}; the environment's are "
                          f"{tuple(observation_space.shape)}.")
    kind, shape, saved = _space(attributes, "action_space", name)
    if isinstance(action_space, gym.spaces.Discrete):
        n = str(saved.get("n", ""))
        if kind != "Discrete" or not n.isdigit() or int(n) != int(action_space.n):
            raise PolicyError(f"{name} was trained with a {kind or 'unnamed'} action space of {n or 'no'} actions; the "
                              f"environment has Discrete({int(action_space.n)}).")
        return
    if kind != "Box" or shape != tuple(action_space.shape):
        raise PolicyError(f"{name} was trained with a {kind or 'unnamed'} action space of shape {shape}; the "
                          f"environment's is a Box of shape {tuple(action_space.shape)}.")
    try:
        low, high = _numbers(saved.get("low")), _numbers(saved.get("high"))
    except ValueError as error:
        raise PolicyError(f"{name}: the action bounds cannot be read: {error}.") from None
    if low.shape != action_space.low.shape or high.shape != action_space.high.shape or not (
            np.allclose(low, action_space.low) and np.allclose(high, action_space.high)):
        raise PolicyError(f"{name} was trained with actions in [{low}, {high}]; the environment's are "
                          f"[{action_space.low}, {action_space.high}].")


def _is_image(space: gym.spaces.Box) -> bool:
    """SB3's ``is_image_space``: three axes, uint8, every bound 0 and 255."""
    return (len(space.shape) == 3 and space.dtype == np.uint8 and bool(np.all(space.low == 0))
            and bool(np.all(space.high == 255)))


def _features(x, state: layers.Weights, prefix: str) -> tuple:
    """SB3's features extractor at ``prefix``: NatureCNN (``cnn``, ``linear``) or Flatten.
    Returns (features (batch, F), the CNN's feature count, or 0 for Flatten)."""
    if f"{prefix}.cnn.0.weight" in state:
        x = layers.nature_cnn(layers.channels_last(x), state, f"{prefix}.cnn")
        features = layers.dense(x, state, f"{prefix}.linear.0", "relu")
        return features, int(features.shape[-1])
    return (keras.layers.Flatten()(x) if len(x.shape) > 2 else x), 0


def _same_weights(state: dict, prefix: str, other: str) -> bool:
    """Whether two modules' parameters are the same (SB3 saves a shared features extractor under each name)."""
    mine = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix + ".")}
    theirs = {key[len(other):]: value for key, value in state.items() if key.startswith(other + ".")}
    return mine.keys() == theirs.keys() and all(np.array_equal(mine[key], theirs[key]) for key in mine)


def _actor_critic(x, state, activation, action_space, kwargs):
    """PPO's and A2C's ActorCriticPolicy -> ({"logits" or "mean", "value"}, CNN features or 0)."""
    # SB3 saves the actor's extractor as pi_features_extractor (before 1.7: features_extractor alone)
    pi = "pi_features_extractor" if any(key.startswith("pi_features_extractor.") for key in state) \
        else "features_extractor"
    pi_features, body = _features(x, state, pi)
    vf_features = pi_features
    if any(key.startswith("vf_features_extractor.") for key in state) and not _same_weights(
            state, pi, "vf_features_extractor"):
        vf_features = _features(x, state, "vf_features_extractor")[0]
    latent_pi = layers.mlp(pi_features, state, layers.sequential_linears(state, "mlp_extractor.policy_net"), activation)
    latent_vf = layers.mlp(vf_features, state, layers.sequential_linears(state, "mlp_extractor.value_net"), activation)
    if not isinstance(action_space, gym.spaces.Box):
        actor = layers.dense(latent_pi, state, "action_net", name="logits")
        return {"logits": actor, "value": layers.dense(latent_vf, state, "value_net", name="value")}, body
    mean = layers.dense(latent_pi, state, "action_net", name=None if _squashed(kwargs) else "mean")
    if _squashed(kwargs):  # gSDE with squash_output: predict gives tanh(mean) rescaled to the bounds
        mean = _rescale(keras.layers.Activation("tanh")(mean), action_space)
    return {"mean": mean, "value": layers.dense(latent_vf, state, "value_net", name="value")}, body


def _squashed(kwargs: dict) -> bool:
    return kwargs.get("squash_output") in (True, "True")


def _dqn(x, state, activation, action_space, kwargs):
    """DQN's QNetwork -> ({"q_values"}, CNN features or 0)."""
    features, body = _features(x, state, "q_net.features_extractor")
    linears = layers.sequential_linears(state, "q_net.q_net")
    if not linears:
        raise PolicyError("the file has no q_net.q_net layers; a DQN's Q-network has at least one.")
    hidden = layers.mlp(features, state, linears[:-1], activation)
    return {"q_values": layers.dense(hidden, state, linears[-1], name="q_values")}, body


def _rescale(squashed, action_space: gym.spaces.Box):
    """tanh output in [-1, 1] -> the action bounds, as SB3's ``unscale_action``: low + (a + 1) (high - low) / 2."""
    low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
    return layers.affine(squashed, (high - low) / 2, low + (high - low) / 2, "mean")


def _critic_value(features, action, state, activation):
    """SB3's ContinuousCritic's first Q-network on [features, action]."""
    joined = keras.layers.Concatenate()([features, action])
    linears = layers.sequential_linears(state, "critic.qf0")
    if not linears:
        raise PolicyError("the file has no critic.qf0 layers; SAC's and TD3's critics have at least one.")
    return layers.dense(layers.mlp(joined, state, linears[:-1], activation), state, linears[-1], name="value")


def _sac(x, state, activation, action_space, kwargs):
    """SAC's Actor and first critic -> ({"mean", "value"}, CNN features or 0)."""
    if "actor.mu.0.weight" in state:
        raise PolicyError("the file is a SAC policy with gSDE (use_sde=True), which this app does not rebuild.")
    features, body = _features(x, state, "actor.features_extractor")
    latent = layers.mlp(features, state, layers.sequential_linears(state, "actor.latent_pi"), activation)
    squashed = layers.dense(latent, state, "actor.mu", "tanh")
    critic_features = _features(x, state, "critic.features_extractor")[0]
    return {"mean": _rescale(squashed, action_space),
            "value": _critic_value(critic_features, squashed, state, activation)}, body


def _td3(x, state, activation, action_space, kwargs):
    """TD3's Actor and first critic -> ({"mean", "value"}, CNN features or 0)."""
    features, body = _features(x, state, "actor.features_extractor")
    linears = layers.sequential_linears(state, "actor.mu")
    if not linears:
        raise PolicyError("the file has no actor.mu layers; TD3's actor has at least one.")
    squashed = layers.dense(layers.mlp(features, state, linears[:-1], activation), state, linears[-1], "tanh")
    critic_features = _features(x, state, "critic.features_extractor")[0]
    return {"mean": _rescale(squashed, action_space),
            "value": _critic_value(critic_features, squashed, state, activation)}, body


def _hidden_widths(state: dict, algorithm: str) -> list[int]:
    prefix = {"PPO": "mlp_extractor.policy_net", "A2C": "mlp_extractor.policy_net", "DQN": "q_net.q_net",
              "SAC": "actor.latent_pi", "TD3": "actor.mu"}[algorithm]
    linears = layers.sequential_linears(state, prefix)
    if algorithm in ("DQN", "TD3"):
        linears = linears[:-1]
    return [int(state[f"{key}.weight"].shape[0]) for key in linears]
