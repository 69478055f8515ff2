"""Policy files, read into Keras models of raw observations: one module per format, chosen by suffix.

    model, description = read_model(path, observation_space, action_space)

| suffix | what it is | read by |
| --- | --- | --- |
| ``.keras`` | a Keras model (``model.save``) | ``keras_file`` (Keras safe mode) |
| ``.zip`` | a Stable-Baselines3 model (``model.save``) | ``sb3`` (its JSON and ``torch_state``) |
| ``.cleanrl_model`` | a CleanRL script's state_dict | ``cleanrl`` (``torch_state``, layouts by key set) |
| ``.onnx`` | an ONNX graph (RLlib, any exporter) | ``onnx_model``, checked against onnxruntime |

No reader runs code from the file: PyTorch pickles go through an allowlist of what a state_dict
needs, JSON and ONNX are data, and Keras files load in safe mode. Adding a format is a module here
and a line in ``READERS``. A normalisation file beside a policy (``normalization``) is folded in.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import keras

from attribution.rl.errors import PolicyError


def _keras(path: Path, observation_space, action_space):
    from attribution.rl.formats.keras_file import load_keras

    return load_keras(path)


def _sb3(path: Path, observation_space, action_space):
    from attribution.rl.formats.sb3 import load_sb3

    return load_sb3(path, path.name, observation_space, action_space)


def _cleanrl(path: Path, observation_space, action_space):
    from attribution.rl.formats.cleanrl import load_cleanrl
    from attribution.rl.formats.torch_state import read_state_dicts

    return load_cleanrl(read_state_dicts(path, path.name), path.name, observation_space, action_space)


def _onnx(path: Path, observation_space, action_space):
    from attribution.rl.formats.onnx_model import load_onnx_policy

    return load_onnx_policy(path, observation_space, action_space)


READERS = {".keras": _keras, ".zip": _sb3, ".cleanrl_model": _cleanrl, ".onnx": _onnx}
NORMALIZATION_SUFFIXES = (".normalization.json", ".normalization.npz")


def read_model(path: Path, observation_space: gym.spaces.Box, action_space: gym.Space) -> tuple[keras.Model, str]:
    """The policy file at ``path`` as (a Keras model of raw observations -> its heads, a one-line description)."""
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"no policy file at {path}.")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise PolicyError(f"{path.name}: expected a policy file ending in {', '.join(READERS)}; "
                          f"received {path.suffix or 'no suffix'}.")
    try:
        return reader(path, observation_space, action_space)
    except PolicyError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as error:
        # what a reader did not foresee in a broken file (Keras refusing a shape, say) is still a refusal
        raise PolicyError(f"{path.name} could not be read as a policy for this environment: "
                          f"{type(error).__name__}: {str(error)[:300]}") from None


def normalization_beside(path: Path) -> Path | None:
    """``policy.normalization.json`` (or ``.npz``) beside ``policy.zip``, if there is one."""
    for suffix in NORMALIZATION_SUFFIXES:
        candidate = path.with_name(path.stem + suffix)
        if candidate.is_file():
            return candidate
    return None
