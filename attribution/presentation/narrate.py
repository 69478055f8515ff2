"""Plain-language sentences from the numbers, for people who are not engineers."""

from __future__ import annotations

import numpy as np

from attribution.engine.ig import output_resolution

SURE = 0.99  # a probability at least this high, here and at the baseline, was settled before the state said anything


def completeness_sentence(output_name: str, at_state: float, at_baseline: float, attribution_sum: float) -> str:
    """'attributions sum to +0.42; P(push right) rose from 0.50 at the baseline to 0.92: gap 0.2%'."""
    change = at_state - at_baseline
    verb = "rose" if change > 0 else "fell" if change < 0 else "stayed"
    movement = (f"{output_name} {verb} from {_number(at_baseline)} at the baseline to {_number(at_state)}" if change
                else f"{output_name} stayed at {_number(at_state)}")
    gap = abs(attribution_sum - change)
    relative = f"gap {100 * gap / abs(change):.1f}%" if change else f"gap {gap:.2g}"
    if change and gap > 0.01 * abs(change) and gap <= output_resolution(at_state, at_baseline):
        relative = f"gap {gap:.1g}, as fine as 32-bit arithmetic resolves"  # a change this small leaves rounding
    return f"attributions sum to {_number(attribution_sum, signed=True)}; {movement}: {relative}"


def settled_sentence(subject: str, output_name: str, at_state: float, at_baseline: float) -> str | None:
    """The plain reading of a probability that was as sure at the baseline as here, where the bars are
    tiny and ``step_sentence`` would read tiny numbers: 'The agent chose STAY and was as sure of it at
    the baseline: P(stay) is 1.00 here and 1.00 there, ...'. None for any other probability."""
    if min(at_state, at_baseline) < SURE:
        return None
    return (f"{subject} and was as sure of it at the baseline: {output_name} is {at_state:.2f} here and "
            f"{at_baseline:.2f} there, so nothing here moved it much and the bars are small. Choose \"logit\" "
            f"under Explain to see what it weighs.")


def _number(value: float, signed: bool = False) -> str:
    """Two decimals for everyday magnitudes, three significant digits otherwise."""
    sign = "+" if signed else ""
    return f"{value:{sign}.2f}" if value == 0 or 0.01 <= abs(value) < 1000 else f"{value:{sign}.3g}"


def step_sentence(subject: str, attributions, descriptions, nouns: bool = False, top: int = 2) -> str:
    """One sentence on why the explained output is what it is at one state.

    'The agent chose PUSH RIGHT mostly because the pole leans right (+0.31) and the pole is falling
    right (+0.12), even though the cart moves right (-0.15).' Parts that pushed the output up are the
    reasons; the strongest one that pushed it down, when it matters, is the 'even though'. When the
    attributions add up to less than zero (the output is lower than at the baseline), the sentence
    leads with what pushed against it.

    Args:
        subject: the start of the sentence ("The agent chose PUSH RIGHT").
        attributions: (n_parts,), one per feature or object.
        descriptions: one phrase per part with ``{value}`` where its attribution goes
            (``observation_parts(...).descriptions(observation)``).
        nouns: the descriptions are things ("the ball ({value})"), not clauses ("the pole leans right ({value})").
    """
    values = np.asarray(attributions, dtype=float).reshape(-1)
    scale = np.abs(values).max() if values.size else 0.0
    if scale == 0:
        return f"{subject}; nothing moved it away from the baseline."

    def part(i, words_follow=True):
        """Part i's phrase; an aside in it ("the ball (+0.4), which is above its paddle") is closed by a
        comma where the sentence goes on with words rather than punctuation."""
        phrase = descriptions[i].format(value=f"{values[i]:+.2g}")
        return f"{phrase}," if words_follow and ", which " in phrase else phrase

    def listed(indices, words_follow):
        return " and ".join([part(i) for i in indices[:-1]] + [part(indices[-1], words_follow)])

    order = np.argsort(-values)
    reasons = [i for i in order[:top] if values[i] >= 0.1 * scale]
    against = [i for i in order[::-1][:top] if values[i] <= -0.1 * scale]
    because = "because of" if nouns else "because"
    if not reasons:
        return f"{subject}, though everything pushed against it; most of all {part(against[0], False)}."
    if values.sum() < 0:  # the output ended below the baseline's: what held it down comes first
        return f"{subject}, although {listed(against, True)} pushed against it; {part(reasons[0])} pushed for it."
    sentence = f"{subject} mostly {because} {listed(reasons, False)}"
    if against and values[against[0]] <= -0.25 * scale:
        sentence += f", even though {part(against[0], nouns)}" + (" pulled the other way" if nouns else "")
    return sentence + "."


# The Trust page's checks, each as (question, two plain sentences for people who are not engineers).
TRUST_CHECKS = {
    "convergence": (
        "Does the arithmetic add up?",
        "IG adds up many small steps on a path from a neutral state to this one, and with enough steps the bars "
        "add up exactly to how much the output changed. A leftover gap under 1% at the app's setting means the "
        "bars are computed accurately."),
    "baselines": (
        "Does the answer depend on the starting point?",
        "Every explanation measures change from a neutral starting state, the baseline. When several sensible "
        "baselines rank the features the same way, the story is not an accident of that choice."),
    "methods": (
        "Do other methods tell the same story?",
        "The plain gradient and gradient × input (often mislabelled IG) look only at this one state, while IG "
        "follows the whole path and is the only one whose bars add up to the change. SmoothGrad repeats IG on "
        "slightly jittered states, and when it agrees with IG, small noise does not change the explanation."),
    "sanity": (
        "Does the explanation come from what the agent learned?",
        "We scramble the network's learned weights layer by layer from the top and explain again. If the bars "
        "barely change, they describe the input rather than the agent, and they should not be trusted."),
    "faithfulness": (
        "Do the important features really matter?",
        "We put the features back to their baseline values one at a time, most important first, and watch the "
        "output, then do the same in random orders. If the output moves faster in the attributions' order, the "
        "bars point at what really drives the decision."),
    "occlusion": (
        "Does painting an object out change the decision as IG says?",
        "We paint each object over with the empty playfield, one at a time, and watch the output. This asks the "
        "question a different way from IG; when the object that matters most is the same for both, the "
        "explanation is not an artefact of IG's path."),
}


def runs_sentence(output_name: str, names, means, spreads, states: int, episodes: int) -> str:
    """What a policy relied on over many states, for one explained output.

    'Over 750 states in 3 episodes, pole angle (rad) mattered most for P(push left), raising it by
    0.118 per state on average (± 0.005 across episodes); next came cart position (m) (−0.029).'
    means, spreads: (G,) each part's mean attribution and its spread across episodes.
    """
    means, spreads = np.asarray(means, float), np.asarray(spreads, float)
    order = np.argsort(-np.abs(means))
    first = order[0]
    verb = "raising" if means[first] >= 0 else "lowering"
    spread = f" (± {_number(spreads[first])} across episodes)" if episodes > 1 else ""
    sentence = (f"Over {states:,} state{'s' * (states != 1)} in {episodes} episode{'s' * (episodes != 1)}, "
                f"{names[first]} mattered most for {output_name}, {verb} it by {_number(abs(means[first]))} "
                f"per state on average{spread}")
    if len(order) > 1:
        sentence += f"; next came {names[order[1]]} ({_number(means[order[1]], signed=True).replace('-', '−')})"
    return sentence + "."
