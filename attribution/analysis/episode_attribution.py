"""A whole episode explained in one batched engine call, and the per-step numbers the Replay page,
its bookmarks and its exports read."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from attribution.engine.ig import integrated_gradients
from attribution.rl.episodes import Episode


@dataclasses.dataclass(frozen=True)
class EpisodeAttribution:
    """IG at every step of an episode. T steps, F features.

    attributions: float32 (T, F), of the explained output at each step.
    targets: int (T,), the output index explained at each step.
    at_state, at_baseline: float (T,), that output at the state and at the baseline.
    output_names: (T,) what was explained, for people ("P(push left)").
    steps: int (T,), the path points each state needed (refinement raises some), as ``IGResult.steps``.
    settings: how it was computed (explain, baseline, steps, method), for reports.
    seconds: the engine call's wall time.
    """

    attributions: np.ndarray
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
                      settings: dict) -> EpisodeAttribution:
    """Every state of ``episode`` through ``integrated_gradients`` in one call (the engine chunks it).

    Args:
        model: the explained model (see ``attribution.explain``), (batch, F) -> (batch, n_outputs).
        targets: int (T,), the output to explain at each step.
        output_names: (T,) names of those outputs.
        baseline: (F,) or (T, F).
    """
    states = episode.observations
    started = time.perf_counter()
    result = integrated_gradients(model, states, baseline=baseline, target=np.asarray(targets, dtype=np.int64),
                                  steps=steps, method=method)
    seconds = time.perf_counter() - started
    rows = np.arange(len(states))
    return EpisodeAttribution(
        attributions=result.attributions.reshape(len(states), -1).astype(np.float32), targets=result.targets,
        at_state=result.outputs[rows, result.targets].astype(np.float64),
        at_baseline=result.baseline_outputs[rows, result.targets].astype(np.float64),
        output_names=tuple(output_names), steps=result.steps, settings=dict(settings), seconds=seconds)


def softmax(logits) -> np.ndarray:
    """(T, n) logits -> (T, n) probabilities, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)
