"""A whole episode explained in batched engine calls, and the per-step numbers the Replay page,
its bookmarks and its exports read: one attribution per part of the observation (its features,
or the objects on a pixel agent's screen), so that a game of thousands of frames stays small."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from attribution.engine.ig import integrated_gradients
from attribution.rl.environments import feature_names as documented_names
from attribution.rl.environments import observation_parts
from attribution.rl.episodes import Episode

STATES_PER_CALL = 256  # an image episode goes through the engine in pieces: float32 copies of 256 states at most


@dataclasses.dataclass(frozen=True)
class EpisodeAttribution:
    """IG at every step of an episode. T steps, G parts (the features, or the objects and the rest).

    attributions: float32 (T, G), each part's attribution of the explained output at each step.
    names: (G,) the parts' names.
    targets: int (T,), the output index explained at each step.
    at_state, at_baseline: float (T,), that output at the state and at the baseline.
    output_names: (T,) what was explained, for people ("P(push left)").
    steps: int (T,), the path points each state needed (refinement raises some), as ``IGResult.steps``.
    settings: how it was computed (explain, baseline, steps, method), for reports.
    seconds: the engine call's wall time.
    """

    attributions: np.ndarray
    names: tuple[str, ...]
    targets: np.ndarray
    at_state: np.ndarray
    at_baseline: np.ndarray
    output_names: tuple[str, ...]
    steps: np.ndarray
    settings: dict
    seconds: float

    @property
    def delta(self) -> np.ndarray:
        """The completeness gap, as ``IGResult.delta``: sum of attributions minus the output's change, float64 (T,)."""
        return self.attributions.sum(axis=1, dtype=np.float64) - (self.at_state - self.at_baseline)


def attribute_episode(model, episode: Episode, targets, output_names, baseline, steps: int, method: str,
                      settings: dict, feature_names=None, on_progress=None) -> EpisodeAttribution:
    """Every state of ``episode`` through ``integrated_gradients``, each part's sum only (added up on
    the device); the engine chunks a vector episode itself, an image episode goes in pieces.

    Args:
        model: the explained model (see ``attribution.explain``), (batch, *obs) -> (batch, n_outputs).
        targets: int (T,), the output to explain at each step.
        output_names: (T,) names of those outputs.
        baseline: (*obs,), (T, *obs), or a function of states (n, *obs) -> their baselines.
        feature_names: the policy's, for the parts of a vector observation (default: the documented ones).
        on_progress: called as on_progress(states explained, T) after each piece, for a progress bar.
    """
    n_features = int(np.prod(episode.observations.shape[1:]))
    parts = observation_parts(episode.env_id, tuple(feature_names or documented_names(episode.env_id, n_features)))
    states, targets = episode.observations, np.asarray(targets, dtype=np.int64)
    size = STATES_PER_CALL if states.dtype == np.uint8 else max(len(states), 1)
    started = time.perf_counter()
    found = []
    for first in range(0, len(states), size):
        rows = slice(first, first + size)
        piece = np.asarray(states[rows], np.float32)
        x0 = baseline(piece) if callable(baseline) else baseline
        if not callable(baseline) and np.ndim(x0) == states.ndim:
            x0 = x0[rows]
        found.append(integrated_gradients(model, piece, baseline=x0, target=targets[rows], steps=steps,
                                          method=method, groups=parts.groups(piece), attributions=False))
        if on_progress is not None:
            on_progress(min(first + size, len(states)), len(states))
    seconds = time.perf_counter() - started
    sums = np.concatenate([result.group_sums for result in found])
    chosen = np.concatenate([result.targets for result in found])
    rows = np.arange(len(states))
    outputs = np.concatenate([result.outputs for result in found])
    baseline_outputs = np.concatenate([result.baseline_outputs for result in found])
    return EpisodeAttribution(
        attributions=sums.astype(np.float32), names=tuple(parts.names), targets=chosen,
        at_state=outputs[rows, chosen].astype(np.float64),
        at_baseline=baseline_outputs[rows, chosen].astype(np.float64),
        output_names=tuple(output_names), steps=np.concatenate([result.steps for result in found]),
        settings=dict(settings), seconds=seconds)


def softmax(logits) -> np.ndarray:
    """(T, n) logits -> (T, n) probabilities, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)
