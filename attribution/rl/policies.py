"""The policies the app explains: the shipped ones (``assets/policies``) and users' files
(Keras, Stable-Baselines3, CleanRL, ONNX: ``attribution.rl.formats``).

    policy = load_policy("CartPole-v1")
    policy.act(observation)        # the greedy action, as the environment accepts it
    policy.info.feature_names      # ('cart position (m)', ...)

A policy model maps raw observations (batch, *obs_shape) to a dict of heads ("logits" or "mean",
and "value"; see ``attribution.explain``) or to one array, read as the logits (discrete actions)
or the mean (continuous actions). No file's code is ever run (see ``attribution.rl.formats``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np

from attribution.engine import backend
from attribution.rl.environments import action_names, feature_names, image_shape, make_env
from attribution.rl.errors import PolicyError
from attribution.rl.files import write_atomically
from attribution.rl.formats import READERS, normalization_beside, read_model
from attribution.rl.formats.normalization import read_normalization
from attribution.rl.rollout import greedy_rollouts

POLICY_DIR = Path(__file__).resolve().parents[2] / "assets" / "policies"
SIDECAR_VERSION = 1
POLICY_SUFFIXES = tuple(READERS)  # the files a user may bring
MAX_UPLOAD_BYTES = 50 * 2**20     # as .streamlit/config.toml's maxUploadSize, for callers other than the page


@dataclasses.dataclass(frozen=True)
class PolicyInfo:
    env_id: str
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...]
    continuous: bool
    heads: tuple[str, ...]            # "logits", "q_values" or "mean", then "value" where the model has a critic
    source: str                       # "shipped" or the file's name
    training_steps: int | None = None
    seed: int | None = None
    eval_return_mean: float | None = None
    eval_return_std: float | None = None
    eval_episodes: int | None = None
    eval_crash_rate: float | None = None                 # driving: the share of those episodes that crashed
    action_log_std: tuple[float, ...] | None = None      # continuous actions: the exploration noise
    reference_states: np.ndarray | None = None           # (K, *obs_shape) from the policy's own rollouts
    median_state: np.ndarray | None = None               # (*obs_shape,): the median of all it saw there
    training_method: str | None = None                   # how it was trained, in words
    description: str | None = None                       # the file, in words: "Stable-Baselines3 PPO, ..."

    @property
    def actor_head(self) -> str:
        return self.heads[0]


class Policy:
    """A loaded policy model and what its numbers mean. Calls the model directly (never
    ``predict``), so one Policy may serve many threads."""

    def __init__(self, model: keras.Model, info: PolicyInfo, action_space: gym.Space):
        self.model, self.info, self.action_space = model, info, action_space

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return tuple(self.model.inputs[0].shape[1:])

    def heads(self, observations) -> dict[str, np.ndarray]:
        """observations (N, *obs_shape) -> {head: (N, width)}."""
        outputs = backend.compiled_call(self.model)(np.asarray(observations, dtype=np.float32))
        return outputs if isinstance(outputs, dict) else {self.info.actor_head: outputs}

    def action_probabilities(self, observation) -> np.ndarray:
        """P(action | observation) for one observation of a discrete policy, float (n_actions,)."""
        logits = self.heads(np.asarray(observation)[None])[self.info.actor_head][0].astype(np.float64)
        exponentials = np.exp(logits - logits.max())
        return exponentials / exponentials.sum()

    def act(self, observation):
        """The greedy action for one observation: an int, or a float32 array inside the action bounds."""
        return self.greedy(self.heads(np.asarray(observation)[None])[self.info.actor_head][0])

    def greedy(self, actor: np.ndarray):
        """The greedy action from the actor head's output at one observation, (width,): as ``act``."""
        if self.info.continuous:
            return np.clip(actor, self.action_space.low, self.action_space.high).astype(np.float32)
        return int(np.argmax(actor))

    def __repr__(self) -> str:
        return f"Policy({self.info.env_id!r}, source={self.info.source!r}, heads={self.info.heads})"


def policy_file_name(env_id: str) -> str:
    """``CartPole-v1.keras``; an id with a namespace becomes ``ALE_Pong-v5.keras``."""
    return env_id.replace("/", "_") + ".keras"


def shipped_env_ids() -> list[str]:
    """The environments a policy is shipped for, sorted."""
    return list(_shipped_env_ids())


@functools.cache  # read once per process: Pong's sidecar alone is 2.8 MB of JSON (60 ms a page run)
def _shipped_env_ids() -> tuple[str, ...]:
    ids = []
    for path in POLICY_DIR.glob("*.keras"):
        if path.with_suffix(".json").exists():
            ids.append(json.loads(path.with_suffix(".json").read_text()).get("env_id", path.stem))
    return tuple(sorted(ids))


def load_policy(env_id: str) -> Policy:
    """The policy shipped for ``env_id``, with its sidecar's metadata."""
    path = POLICY_DIR / policy_file_name(env_id)
    if not path.exists():
        raise PolicyError(f"no shipped policy for {env_id!r}; shipped: {', '.join(shipped_env_ids()) or 'none'}.")
    return load_policy_file(path, env_id, source="shipped")


def load_policy_file(path, env_id: str, feature_names_override=None, source: str | None = None,
                     normalization=None) -> Policy:
    """A policy file (``.keras``, an SB3 ``.zip``, a ``.cleanrl_model``, ``.onnx``) as a Policy for ``env_id``
    (any installed Gymnasium id with a Box observation space).

    A JSON sidecar beside the file (same name, ``.json``) supplies names and metadata; without one,
    names are the environment's documented ones where known, else ``obs[0]``, ``obs[1]``, ...
    ``normalization``: a VecNormalize statistics file (JSON or ``.npz``) folded into the model; by
    default ``NAME.normalization.json`` (or ``.npz``) beside the file, if there is one.
    """
    path = Path(path)
    observation_space, action_space = environment_spaces(env_id)
    model, description = read_model(path, observation_space, action_space)
    normalization = Path(normalization) if normalization else normalization_beside(path)
    if normalization is not None:
        statistics = read_normalization(normalization.read_bytes(), normalization.name, observation_space.shape)
        model = statistics.fold(model)
        description += f", with {normalization.name}'s observation normalisation folded in"
    continuous = isinstance(action_space, gym.spaces.Box)
    heads = _check_fits(model, env_id, observation_space, action_space, path.name)
    n_features = int(np.prod(observation_space.shape))
    n_actions = int(action_space.shape[0]) if continuous else int(action_space.n)
    sidecar = _read_sidecar(path.with_suffix(".json"), env_id)
    names = tuple(feature_names_override or sidecar.get("feature_names") or feature_names(env_id, n_features))
    if len(names) != n_features:
        raise PolicyError(f"need {n_features} feature names for {env_id}; received {len(names)}: {list(names)}.")
    actions = tuple(sidecar.get("action_names") or action_names(env_id, n_actions))
    if len(actions) != n_actions:
        raise PolicyError(f"need {n_actions} action names for {env_id}; the sidecar gives {len(actions)}: "
                          f"{list(actions)}.")
    reference, median = sidecar.get("reference_states"), sidecar.get("median_state")
    info = PolicyInfo(
        env_id=env_id,
        feature_names=names,
        action_names=actions,
        continuous=continuous,
        heads=heads,
        source=source or path.name,
        training_steps=sidecar.get("training_steps"),
        seed=sidecar.get("seed"),
        eval_return_mean=sidecar.get("eval_return_mean"),
        eval_return_std=sidecar.get("eval_return_std"),
        eval_episodes=sidecar.get("eval_episodes"),
        eval_crash_rate=sidecar.get("eval_crash_rate"),
        action_log_std=tuple(sidecar["action_log_std"]) if sidecar.get("action_log_std") else None,
        reference_states=None
        if reference is None
        else np.asarray(reference, np.float32).reshape(-1, *observation_space.shape),
        median_state=None if median is None else np.asarray(median, np.float32).reshape(observation_space.shape),
        training_method=sidecar.get("training_method"),
        description=description,
    )
    return Policy(model, info, action_space)


def load_uploaded_policy(data: bytes, filename: str, env_id: str, n_reference: int = 256,
                         normalization: tuple[bytes, str] | None = None) -> Policy:
    """A policy from an uploaded file's bytes, read by its suffix like any file (``load_policy_file``).

    ``normalization``: (bytes, file name) of a normalisation file uploaded beside it. A file brings
    no sidecar, so the reference states come from the policy's own rollouts (``with_own_reference_states``).
    """
    name = Path(filename).name or "uploaded"
    if len(data) > MAX_UPLOAD_BYTES:
        raise PolicyError(f"{name} is {len(data) / 2**20:,.1f} MB; an uploaded policy may be at most "
                          f"{MAX_UPLOAD_BYTES // 2**20} MB.")
    suffix = Path(name).suffix.lower()
    if suffix not in READERS:
        raise PolicyError(f"{name}: expected a policy file ending in {', '.join(READERS)}; "
                          f"received {suffix or 'no suffix'}.")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name  # the user's own names, so that messages name their files
        path.write_bytes(data)
        statistics = None
        if normalization is not None:  # in a folder of its own: never read as the policy's sidecar
            statistics = Path(folder) / "normalization" / (Path(normalization[1]).name or "normalization.json")
            statistics.parent.mkdir()
            statistics.write_bytes(normalization[0])
        policy = load_policy_file(path, env_id, source=name, normalization=statistics)
    return with_own_reference_states(policy, n_reference)


def with_own_reference_states(policy: Policy, n_reference: int = 256) -> Policy:
    """``policy`` with reference states from its own greedy rollouts (at most 2,000 steps, seeds 0,
    1, ...), for a file that brings none: the sliders' ranges and the "mean of reference states"
    baseline need them. For images, every 25th state is kept and their median is the empty playfield."""
    image = image_shape(policy.info.env_id) is not None
    _, states = greedy_rollouts(policy, policy.info.env_id, max_steps=2_000 // (25 if image else 1),
                                keep_every=25 if image else 1)
    rng = np.random.default_rng(0)
    count = min(8 if image else n_reference, len(states))
    reference = states[np.sort(rng.choice(len(states), count, replace=False))]
    info = dataclasses.replace(policy.info, reference_states=reference,
                               median_state=np.median(states, axis=0) if image else None)
    return Policy(policy.model, info, policy.action_space)


def policy_from_model(model: keras.Model, env_id: str, source: str = "in memory") -> Policy:
    """A Policy around a model in memory, with the environment's documented names."""
    observation_space, action_space = environment_spaces(env_id)
    heads = _check_fits(model, env_id, observation_space, action_space, source)
    continuous = isinstance(action_space, gym.spaces.Box)
    n_actions = int(action_space.shape[0]) if continuous else int(action_space.n)
    info = PolicyInfo(env_id, feature_names(env_id, int(np.prod(observation_space.shape))),
                      action_names(env_id, n_actions), continuous, heads, source)
    return Policy(model, info, action_space)


def environment_spaces(env_id: str) -> tuple[gym.spaces.Box, gym.Space]:
    """(observation space, action space) of an installed environment with a Box observation space."""
    if not isinstance(env_id, str) or env_id not in gym.registry:
        raise PolicyError(f"unknown environment id {env_id!r}: it is not an installed Gymnasium environment.")
    try:
        env = make_env(env_id)
    except Exception as error:  # a registered id whose dependencies are missing, say
        raise PolicyError(f"environment {env_id!r} could not be created: {type(error).__name__}: {error}") from error
    spaces = env.observation_space, env.action_space
    env.close()
    if not isinstance(spaces[0], gym.spaces.Box):
        raise PolicyError(f"{env_id} has a {type(spaces[0]).__name__} observation space; attribution needs a Box.")
    if not isinstance(spaces[1], (gym.spaces.Discrete, gym.spaces.Box)):
        raise PolicyError(f"{env_id} has a {type(spaces[1]).__name__} action space; supported: Discrete and Box.")
    return spaces


def save_policy(model: keras.Model, env_id: str, out_dir, name: str | None = None, **metadata) -> Path:
    """Write ``ENV_ID.keras`` and ``ENV_ID.json`` (or ``name``.keras and .json) into ``out_dir``, each
    atomically (temp file, then rename).

    ``metadata`` holds the sidecar's fields: seed, training_steps, eval_return_mean, eval_return_std,
    eval_episodes, action_log_std, reference_states, median_state, training_method, config.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    observation_space, action_space = environment_spaces(env_id)
    continuous = isinstance(action_space, gym.spaces.Box)
    n_actions = int(action_space.shape[0]) if continuous else int(action_space.n)
    n_features = int(np.prod(observation_space.shape))
    heads = _check_fits(model, env_id, observation_space, action_space, "the trained model")
    sidecar = {
        "format": "rl-attribution policy", "version": SIDECAR_VERSION, "env_id": env_id,
        # a pixel's name follows from its place, so image environments' sidecars leave the names out
        "feature_names": None if image_shape(env_id) else list(feature_names(env_id, n_features)),
        "action_names": list(action_names(env_id, n_actions)),
        "heads": list(heads), **{key: _jsonable(value) for key, value in metadata.items()},
    }
    target = out_dir / (f"{name}.keras" if name else policy_file_name(env_id))
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        staged = Path(tmp) / target.name  # Keras insists on the .keras suffix
        model.save(staged)
        os.replace(staged, target)
    write_atomically(target.with_suffix(".json"), json.dumps(sidecar, indent=1).encode())
    return target


def _check_fits(model: keras.Model, env_id: str, observation_space, action_space, name: str) -> tuple[str, ...]:
    """Check the model's input and output against the spaces; return its heads, actor first."""
    continuous = isinstance(action_space, gym.spaces.Box)
    n_actions = int(action_space.shape[0]) if continuous else int(action_space.n)
    obs_shape = tuple(observation_space.shape)
    try:
        model_input = tuple(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError):
        raise PolicyError(f"{name} has no known input shape; expected a functional or Sequential model taking "
                          f"(batch, {', '.join(map(str, obs_shape))}).") from None
    if len(model.inputs) != 1 or model_input != obs_shape:
        raise PolicyError(f"{name} takes inputs of shape (batch, {', '.join(map(str, model_input))}); "
                          f"{env_id} observations have shape {obs_shape}.")
    actor = "mean" if continuous else "logits"
    try:  # symbolic, so a Sequential that was never called (as model.save leaves it) has outputs too
        outputs = model.compute_output_spec(keras.KerasTensor((1, *obs_shape), dtype="float32"))
    except Exception as error:
        raise PolicyError(f"{name} could not be called on observations of shape (batch, "
                          f"{', '.join(map(str, obs_shape))}): {type(error).__name__}: {error}") from None
    if isinstance(outputs, dict):
        if not continuous and actor not in outputs and "q_values" in outputs:
            actor = "q_values"  # a Q-network acts on its Q-values
        if actor not in outputs:
            raise PolicyError(f"{name} has heads {sorted(outputs)}; a policy for {env_id} needs a {actor!r} head.")
        widths = {head: tuple(tensor.shape[1:]) for head, tensor in outputs.items()}
        heads = (actor, *sorted(h for h in outputs if h != actor))
    elif isinstance(outputs, (list, tuple)):
        raise PolicyError(
            f"{name} returns {len(outputs)} unnamed outputs; expected one array or a dict of named heads."
        )
    else:
        widths, heads = {actor: tuple(outputs.shape[1:])}, (actor,)
    if widths[actor] != (n_actions,):
        raise PolicyError(f"{name}'s {actor!r} output has shape (batch, {', '.join(map(str, widths[actor]))}); "
                          f"{env_id} has {n_actions} {'action dimension(s)' if continuous else 'actions'}.")
    if "value" in widths and widths["value"] != (1,):
        raise PolicyError(
            f"{name}'s 'value' head has shape (batch, {', '.join(map(str, widths['value']))}); expected (batch, 1)."
        )
    return heads


def _read_sidecar(path: Path, env_id: str) -> dict:
    if not path.exists():
        return {}
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PolicyError(f"{path.name} is not a readable JSON sidecar: {error}") from None
    if not isinstance(sidecar, dict) or sidecar.get("env_id", env_id) != env_id:
        raise PolicyError(
            f"{path.name} describes "
            f"{sidecar.get('env_id') if isinstance(sidecar, dict) else 'something else'!r}, not {env_id!r}."
        )
    return sidecar


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return np.round(value.astype(float), 6).tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value
