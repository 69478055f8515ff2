"""Plain-language sentences from the numbers, for people who are not engineers."""

from __future__ import annotations

import numpy as np


def completeness_sentence(output_name: str, at_state: float, at_baseline: float, attribution_sum: float) -> str:
    """'attributions sum to +0.42; P(push right) rose from 0.50 at the baseline to 0.92: gap 0.2%'."""
    change = at_state - at_baseline
    verb = "rose" if change > 0 else "fell" if change < 0 else "stayed"
    movement = (f"{output_name} {verb} from {_number(at_baseline)} at the baseline to {_number(at_state)}" if change
                else f"{output_name} stayed at {_number(at_state)}")
    gap = abs(attribution_sum - change)
    relative = f"gap {100 * gap / abs(change):.1f}%" if change else f"gap {gap:.2g}"
    return f"attributions sum to {_number(attribution_sum, signed=True)}; {movement}: {relative}"


def _number(value: float, signed: bool = False) -> str:
    """Two decimals for everyday magnitudes, three significant digits otherwise."""
    sign = "+" if signed else ""
    return f"{value:{sign}.2f}" if value == 0 or 0.01 <= abs(value) < 1000 else f"{value:{sign}.3g}"


def step_sentence(subject: str, attributions, observation, phrases, top: int = 2) -> str:
    """One sentence on why the explained output is what it is at one state.

    'The agent chose PUSH RIGHT mostly because the pole leans right (+0.31) and the pole is falling
    right (+0.12), despite the cart moves right (-0.15).' Features that pushed the output up are the
    reasons; the strongest one that pushed it down, when it matters, is the 'despite'. When the
    attributions add up to less than zero (the output is lower than at the baseline), the sentence
    leads with what pushed against it.

    Args:
        subject: the start of the sentence ("The agent chose PUSH RIGHT").
        attributions, observation: (n_features,).
        phrases: one ``environments.Phrase`` per feature.
    """
    values = np.asarray(attributions, dtype=float).reshape(-1)
    observation = np.asarray(observation, dtype=float).reshape(-1)
    scale = np.abs(values).max() if values.size else 0.0
    if scale == 0:
        return f"{subject}; no feature moved it away from the baseline."

    def part(i):
        return f"{phrases[i].describe(observation[i])} ({values[i]:+.2g})"

    order = np.argsort(-values)
    reasons = [i for i in order[:top] if values[i] >= 0.1 * scale]
    against = [i for i in order[::-1][:top] if values[i] <= -0.1 * scale]
    if not reasons:
        return f"{subject}, though every feature pushed against it; most of all {part(against[0])}."
    if values.sum() < 0:  # the output ended below the baseline's: what held it down comes first
        return (f"{subject}, although {' and '.join(part(i) for i in against)} pushed against it; "
                f"{part(reasons[0])} pushed for it.")
    sentence = f"{subject} mostly because {' and '.join(part(i) for i in reasons)}"
    if against and values[against[0]] <= -0.25 * scale:
        sentence += f", despite {part(against[0])}"
    return sentence + "."
