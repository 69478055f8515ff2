"""Observation normalisation saved beside a policy (Stable-Baselines3's VecNormalize), folded into its model.

SB3 pickles a VecNormalize, and a pickle is never loaded here. Its statistics travel instead as a
small JSON or ``.npz`` file with ``mean``, ``var``, ``epsilon`` and ``clip_obs``, written by

    import json
    stats = {"mean": venv.obs_rms.mean.tolist(), "var": venv.obs_rms.var.tolist(),
             "epsilon": venv.epsilon, "clip_obs": venv.clip_obs}
    json.dump(stats, open("policy.normalization.json", "w"))

The model then takes raw observations, so attributions are in the environment's units:
clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs), as VecNormalize.normalize_obs does.
"""

from __future__ import annotations

import dataclasses
import io
import json

import keras
import numpy as np

from attribution.rl.archives import ArchiveLimits, open_archive
from attribution.rl.errors import PolicyError

MAX_BYTES = 16 * 2**20
NORMALIZATION_LIMITS = ArchiveLimits("a normalisation file (an .npz of mean, var, epsilon, clip_obs)",
                                     max_members=8, max_total_bytes=MAX_BYTES, max_ratio=50)


def _small(shape, dtype) -> None:
    if np.prod(shape) * dtype.itemsize > MAX_BYTES:
        raise PolicyError(f"an entry of shape {shape} is larger than a normalisation file holds.")


@dataclasses.dataclass(frozen=True)
class ObservationNormalization:
    mean: np.ndarray      # (*obs_shape,)
    var: np.ndarray       # (*obs_shape,)
    epsilon: float
    clip: float

    def apply(self, observations: np.ndarray) -> np.ndarray:
        """What VecNormalize does to raw observations (N, *obs_shape)."""
        scaled = (np.asarray(observations, np.float64) - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(scaled, -self.clip, self.clip)

    def fold(self, model: keras.Model) -> keras.Model:
        """A model of raw observations: this normalisation, then ``model``."""
        observations = keras.Input(model.inputs[0].shape[1:], name="raw_observation")
        axes = tuple(range(1, 1 + self.mean.ndim))  # a mean and variance per feature, whatever the shape
        x = keras.layers.Normalization(axis=axes, mean=self.mean, variance=self.var + self.epsilon)(observations)
        # clip(x, -c, c) with built-in layers only: relu(x + c, max 2c) - c
        x = keras.layers.Rescaling(1.0, offset=self.clip)(x)
        x = keras.layers.ReLU(max_value=2 * self.clip)(x)
        x = keras.layers.Rescaling(1.0, offset=-self.clip)(x)
        return keras.Model(observations, model(x), name=f"{model.name}_on_raw_observations")


def read_normalization(data: bytes, name: str, obs_shape: tuple[int, ...]) -> ObservationNormalization:
    """Statistics from a JSON or ``.npz`` file's bytes (``name`` says which), checked against the observations."""
    if len(data) > MAX_BYTES:
        raise PolicyError(f"{name} is {len(data):,} bytes; a normalisation file holds four small entries "
                          f"(at most {MAX_BYTES:,} bytes).")
    try:
        if name.endswith(".npz"):
            with open_archive(io.BytesIO(data), NORMALIZATION_LIMITS, name) as archive:
                fields = {member.removesuffix(".npy"): archive.read_npy(member, _small)
                          for member in archive.members}
        else:
            fields = json.loads(data)
    except PolicyError:
        raise
    except Exception as error:  # json's errors, and the archive's (ArchiveError, a ValueError): pickles refused
        raise PolicyError(f"{name} is not a normalisation file (JSON or .npz with mean, var, epsilon, clip_obs): "
                          f"{type(error).__name__}: {error}") from None
    missing = {"mean", "var", "epsilon", "clip_obs"} - set(fields if isinstance(fields, dict) else ())
    if missing:
        raise PolicyError(f"{name} needs mean, var, epsilon and clip_obs; it lacks {', '.join(sorted(missing))}.")
    try:
        mean, var = (np.asarray(fields[key], np.float64) for key in ("mean", "var"))
        epsilon, clip = float(np.asarray(fields["epsilon"])), float(np.asarray(fields["clip_obs"]))
    except (TypeError, ValueError) as error:
        raise PolicyError(f"{name}: mean, var, epsilon and clip_obs must be numbers: {error}") from None
    for key, value in (("mean", mean), ("var", var)):
        if value.shape != tuple(obs_shape):
            raise PolicyError(f"{name}: {key} has shape {value.shape}; the observations have shape {obs_shape}.")
    if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var >= 0).all()):
        raise PolicyError(f"{name}: mean must be finite and var finite and non-negative.")
    if not (np.isfinite(epsilon) and epsilon >= 0 and np.isfinite(clip) and clip > 0):
        raise PolicyError(f"{name}: expected epsilon >= 0 and clip_obs > 0; received {epsilon} and {clip}.")
    return ObservationNormalization(mean, var, epsilon, clip)
